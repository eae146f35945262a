"""Bodies of the account routes. Extra members are ignored (clients send what they send), and both the snake
and the camel spelling of each field are accepted, as existing clients use both."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from vidscene.catalogue import PASSWORD_MAX, PASSWORD_MIN, USERNAME_MAX, USERNAME_MIN, USERNAME_PATTERN


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class Credentials(_Body):
    username: str = Field(min_length=1, max_length=1024)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


# What a new username or password must be, for the schema; the service checks it and words the 400 itself
# (pydantic's own message would not name the rule), so validation here stays as lenient as for a login.
_NEW_USERNAME: JsonDict = {"pattern": USERNAME_PATTERN, "minLength": USERNAME_MIN, "maxLength": USERNAME_MAX}
_NEW_PASSWORD: JsonDict = {"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}


class NewAccount(_Body):
    username: str = Field(min_length=1, max_length=1024, json_schema_extra=_NEW_USERNAME)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX, json_schema_extra=_NEW_PASSWORD)


class UsernameUpdate(_Body):
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_username: str = Field(validation_alias=AliasChoices("new_username", "newUsername"), min_length=1,
                              max_length=1024, json_schema_extra=_NEW_USERNAME)


class PasswordUpdate(_Body):
    old_password: str = Field(validation_alias=AliasChoices("old_password", "oldPassword"), min_length=1,
                              max_length=PASSWORD_MAX)
    new_password: str = Field(validation_alias=AliasChoices("new_password", "newPassword"), min_length=1,
                              max_length=PASSWORD_MAX, json_schema_extra=_NEW_PASSWORD)


class PasswordConfirmation(_Body):
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class TokenOut(BaseModel):
    jwtToken: str  # the wire name existing clients read


class SuccessOut(BaseModel):
    success: Literal[True] = True
