"""Bodies of the edit routes: an edit list (``vidscene.edits``) in, its state out."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidscene.edits import MAX_OPERATIONS, Operation, parse_operation

Finite = Annotated[float, Field(allow_inf_nan=False)]


class EditOperation(BaseModel):
    """One step of an edit, in the exported files' coordinates."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["keep_inside", "delete_inside"]
    shape: Literal["box", "sphere"]
    center: list[Finite] = Field(min_length=3, max_length=3)
    half_size: list[Finite] | None = Field(default=None, min_length=3, max_length=3,
                                           description="box: half its size along its own axes")
    radius: Finite | None = Field(default=None, description="sphere")
    rotation: list[Finite] = Field(default=[1.0, 0.0, 0.0, 0.0], min_length=4, max_length=4,
                                   description="box: a quaternion [w, x, y, z], normalised here")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        self.operation()  # the shape's own rules: a box's half sizes, a sphere's radius, a usable rotation
        return self

    def operation(self) -> Operation:
        return parse_operation(self.model_dump(exclude_none=True))


class EditRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    operations: list[EditOperation] = Field(min_length=1, max_length=MAX_OPERATIONS,
                                            description="Applied in order; DELETE restores the original")


EditState = Literal["original", "preparing", "ready", "failed"]


class EditOut(BaseModel):
    operations: list[EditOperation]
    version: int = Field(description="Counts every change of the edit list; the files served are of `served`")
    served: int = Field(description="The version downloads, metadata and share links show now; 0: the original")
    state: EditState = Field(description="preparing: the edited files are being written; ready: served")
    kept: int | None = Field(description="Gaussians the edit keeps at the last iteration")
    total: int | None = Field(description="Gaussians before the edit")
    message: str = Field(description="Why the edit failed, when it did")
