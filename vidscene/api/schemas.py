"""Request and response bodies, so /openapi.json documents every success and error shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
PASSWORD_MIN = 8
PASSWORD_MAX = 1024

OutputType = Literal["splat_cloud", "point_cloud", "video", "model"]
OUTPUT_TYPES: tuple[str, ...] = ("splat_cloud", "point_cloud", "video", "model")


# ---- errors ---------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, for the user")


class RegisterErrorBody(ErrorBody):
    success: Literal[False] = False


def error_responses(*codes: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses (plus the 500 every route can give)."""
    descriptions = {
        400: "A field is missing or invalid",
        401: "Missing, invalid, expired or revoked token, or wrong password",
        404: "Unknown scene, or a scene of another user",
        409: "Username taken",
        413: "Upload too large",
        415: "The upload is not a decodable video",
        416: "Range not satisfiable",
        429: "Too many failed attempts",
        500: "Internal error",
        507: "Not enough disk space on the server",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in (*codes, 500):
        out[code] = {"model": model, "description": descriptions[code]}
    return out


# ---- accounts -------------------------------------------------------------------------------------------


class _Body(BaseModel):
    # Extra members are ignored (clients send what they send); both snake and camel spellings are accepted.
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


class MessageOut(BaseModel):
    message: str


# ---- scenes ---------------------------------------------------------------------------------------------


class SceneCreated(BaseModel):
    id: str
    message: str


class SceneName(BaseModel):
    name: str


class SceneHistory(BaseModel):
    resources: list[str] = Field(description="Scene ids of the user, oldest first")


class SceneProgress(BaseModel):
    uuid: str = Field(description="The scene id")
    status: int = 200
    error: int = Field(description="0, or a non-zero code when processing failed")
    message: str
    processing: bool = Field(description="True only while a worker is running the job")
    overall_position: int = Field(description="0-based place among all unfinished scenes (0 once finished)")
    overall_size: int = Field(description="Number of unfinished scenes of all users")
    stage: Literal["sfm_list", "nerf_list"]
    current_position: int = Field(description="Step counter inside the stage (e.g. the training iteration)")
    current_size: int
    state: Literal["queued", "processing", "done", "failed", "cancelled"]
    step: str | None = Field(description="Pipeline step: frames, sfm, train or export")
    percent: float = Field(description="Overall completion estimate, 0-100")
    eta_seconds: int | None = Field(description="Estimated seconds until done, when known")


class ResourceInfo(BaseModel):
    exists: bool
    size: int = Field(description="Bytes")
    chunks: int = Field(description="ceil(size / 1048576)")
    last_chunk_size: int


class SceneMetadata(BaseModel):
    uuid: str
    status: int = 200
    error: int = 0
    message: str
    resources: dict[str, dict[str, ResourceInfo]] = Field(
        description="output type -> iteration (as a string) -> file information")


# ---- system ---------------------------------------------------------------------------------------------


class RouteInfo(BaseModel):
    method: str
    path: str
    auth: bool
