from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from vidscene.db.migrate import upgrade
from vidscene.db.models import Job, Scene, User
from vidscene.db.session import make_engine, make_sessionmaker


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def add_scene(factory: sessionmaker[Session], scene_id: str = "scene-1", *, username: str = "alice",
              total: int = 10, outputs: list[str] | None = None, mode: str = "gaussian") -> int:
    """Insert a user (if needed), a scene and its queued job; returns the job id."""
    with factory() as session:
        user = session.query(User).filter_by(username=username).one_or_none()
        if user is None:
            user = User(username=username, password_hash="x")
            session.add(user)
            session.flush()
        scene = Scene(id=scene_id, user_id=user.id, name="test", training_mode=mode,
                      output_types=outputs or ["splat_cloud"], save_iterations=[total], total_iterations=total,
                      preset="preview", video_filename="video.mp4", video_info={})
        session.add(scene)
        session.flush()
        job = Job(scene_id=scene.id)
        session.add(job)
        session.commit()
        return job.id
