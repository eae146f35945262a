"""Bodies of the account routes. Extra members are ignored (clients send what they send), and both the snake
and the camel spelling of each field are accepted, as existing clients use both."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from vidscene.catalogue import PASSWORD_MAX


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class Credentials(_Body):
    username: str = Field(min_length=1, max_length=1024)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class UsernameUpdate(_Body):
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_username: str = Field(validation_alias=AliasChoices("new_username", "newUsername"), min_length=1,
                              max_length=1024)


class PasswordUpdate(_Body):
    old_password: str = Field(validation_alias=AliasChoices("old_password", "oldPassword"), min_length=1,
                              max_length=PASSWORD_MAX)
    new_password: str = Field(validation_alias=AliasChoices("new_password", "newPassword"), min_length=1,
                              max_length=PASSWORD_MAX)


class PasswordConfirmation(_Body):
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class TokenOut(BaseModel):
    jwtToken: str  # the wire name existing clients read


class SuccessOut(BaseModel):
    success: Literal[True] = True
