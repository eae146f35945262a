"""The rules of edits (crop and clean) and of outputs made after the fact; no HTTP and no commit here.

An edit never changes the original files: ``PUT`` stores the edit list with a new version and queues a derive
job (``jobs.derive``) that writes every gaussian format of every kept iteration under that version; once the
files are in place the scene serves them (downloads, metadata, share links), and ``DELETE`` goes back to the
originals at once. The API does no heavy work: it counts what an edit keeps from the positions of a
``.splat`` or ``.ply`` the scene already has (a memory map), enough to refuse an edit that keeps nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from vidscene import catalogue
from vidscene.api.deps import UnitOfWork
from vidscene.api.edits import repository
from vidscene.api.edits.schemas import EditOperation, EditOut, EditRequest
from vidscene.api.errors import BadRequestError, ConflictError, NotFoundError, SceneNotFoundError
from vidscene.db.models import JobState, Output, Scene, SceneEdit
from vidscene.edits import UNEDITED, Operation, keep_mask, read_positions
from vidscene.jobs import derive
from vidscene.storage import Storage

# Read for counting, cheapest first: 32 bytes a gaussian, then the .ply's 62 floats.
_POSITION_SOURCES = ("splat_cloud", "point_cloud")


def _out(edit: SceneEdit | None, served: int) -> EditOut:
    if edit is None:
        return EditOut(operations=[], version=0, served=served, state="original", kept=None, total=None,
                       message="")
    return EditOut(operations=[EditOperation.model_validate(op) for op in edit.operations], version=edit.version,
                   served=served, state=edit.state, kept=edit.kept, total=edit.total,
                   message=edit.message)


def _finished_scene(session: Session, user_id: int, scene_id: str, *, lock: bool = False) -> Scene:
    scene = repository.owned_scene(session, user_id, scene_id, lock=lock)
    if scene is None:
        raise SceneNotFoundError()
    if repository.job_state(session, scene_id) != JobState.done.value:
        raise ConflictError("The scene is not processed yet: edit it once it is done.")
    return scene


def get_edit(sessions: sessionmaker[Session], *, user_id: int, scene_id: str) -> EditOut:
    with sessions() as session:
        scene = repository.owned_scene(session, user_id, scene_id)
        if scene is None:
            raise SceneNotFoundError()
        return _out(repository.edit_of(session, scene_id), scene.edit_version)


def count_kept(storage: Storage, scene_id: str, originals: list[Output],
               operations: list[Operation]) -> tuple[int, int] | None:
    """(kept, total) gaussians at the last iteration from a ``.splat`` or ``.ply`` of the scene; None
    without one (the derive job counts them then)."""
    files = storage.scene(scene_id)
    for output_type in _POSITION_SOURCES:
        rows = [row for row in originals if row.output_type == output_type]
        if not rows:
            continue
        try:
            positions = read_positions(files.root / max(rows, key=lambda row: row.iteration).relpath)
        except (OSError, ValueError):
            continue
        if positions is not None:
            return int(keep_mask(positions, operations).sum()), len(positions)
    return None


def put_edit(sessions: sessionmaker[Session], unit_of_work: UnitOfWork, storage: Storage, *, user_id: int,
             scene_id: str, request: EditRequest) -> tuple[EditOut, int | None]:
    """Store a new edit list and queue its files; (the answer, the derive job to enqueue after the commit)."""
    operations = [op.operation() for op in request.operations]
    with sessions() as session:
        scene = _finished_scene(session, user_id, scene_id)
        if scene.training_mode != "gaussian":
            raise BadRequestError("Invalid operations: only gaussian scenes can be cropped and cleaned.")
        originals = repository.original_outputs(session, scene_id)
    counted = count_kept(storage, scene_id, originals, operations)
    if counted is not None and counted[0] == 0:
        raise BadRequestError("Invalid operations: the edit keeps no gaussian (of "
                              f"{counted[1]}); widen the box or sphere, or remove an operation.")
    with unit_of_work() as session:
        scene = _finished_scene(session, user_id, scene_id, lock=True)
        edit = repository.edit_of(session, scene_id, lock=True)
        if edit is None:
            edit = SceneEdit(scene_id=scene_id, version=0)
            session.add(edit)
        edit.version += 1
        edit.operations = [op.to_json() for op in operations]
        edit.state = derive.EDIT_PREPARING
        edit.kept, edit.total = counted if counted is not None else (None, None)
        edit.message = ""
        types = sorted({row.output_type for row in repository.original_outputs(session, scene_id)})
        job_id = derive.request(session, scene_id, edit.version, types)
        session.flush()
        return _out(edit, scene.edit_version), job_id


def delete_edit(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, scene_id: str) -> EditOut:
    """Serve the original again at once; the edited files go after the commit."""
    with unit_of_work() as session:
        scene = repository.owned_scene(session, user_id, scene_id, lock=True)
        if scene is None:
            raise SceneNotFoundError()
        edit = repository.edit_of(session, scene_id, lock=True)
        if edit is not None:  # the version moves on, so a derive job still writing an edit finds it stale
            edit.version += 1
            edit.operations, edit.state, edit.kept, edit.total, edit.message = [], derive.EDIT_ORIGINAL, None, None, ""
        scene.edit_version = 0
        repository.drop_edited_outputs(session, scene_id)
        answer = _out(edit, 0)
    storage.remove_edits(scene_id)  # in the store too, where nothing else would ever delete them
    return answer


class OutputFailedError(ConflictError):
    """The newest job making an output type failed: its message, until the owner asks with ``retry``."""


def prepare_output(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, scene_id: str,
                   output_type: str, iteration: int | None = None, retry: bool = False) -> int | None:
    """Queue the making of an output type the upload did not ask for (at the edit the scene serves); the
    derive job to enqueue, or None when one is already on its way. 404 when it cannot be made (at
    ``iteration``, when given: otherwise asking for an iteration without a model would queue a job that makes
    nothing there, again at every ask); 409 with the failure's message when the last try failed and
    ``retry`` is not set."""
    label = catalogue.OUTPUT_TYPES[output_type].label
    with unit_of_work() as session:
        scene = repository.owned_scene(session, user_id, scene_id, lock=True)
        if scene is None:
            raise SceneNotFoundError()
        if repository.job_state(session, scene_id) != JobState.done.value:
            raise NotFoundError(f"This scene does not produce {output_type} yet: {label} can be made once the "
                                "scene is processed.")
        asked = [iteration] if iteration is not None else sorted(set(scene.save_iterations) | {scene.total_iterations})
        if not storage.kept_models(scene_id, asked, scene.training_mode):
            raise NotFoundError(f"This scene does not produce {output_type}: its trained model is not kept." if
                                iteration is None else f"This scene does not produce {output_type} for iteration "
                                f"{iteration}: the model of that iteration is not kept.")
        version = 0 if output_type in UNEDITED else scene.edit_version  # an edit serves their originals
        failed = None if retry else derive.failure(session, scene_id, version, output_type)
        if failed is not None:
            raise OutputFailedError(f"Making {label} failed: {failed} Ask again with retry=true to try once more.")
        return derive.request(session, scene_id, version, [output_type])
