"""The order in which unfinished jobs get their stages: round-robin across users, each user's scenes oldest
first. The one definition of the queue: workers claim by it (``state.first_waiting``), and the progress
route's ``overall_position`` and ``starts_in_seconds`` count by it (``progress``, ``estimates``).

Oldest-first across everyone let one user who uploads 20 videos hold every other user's scene behind all 20.
Here each unfinished job has a *turn*: 1 for its owner's oldest unfinished job, 2 for the next, and so on.
Every turn-1 job comes before any turn-2 job, so a user with one scene waits behind at most one scene of each
other user. Among jobs of one turn, the user whose last stage was handed out longest ago goes first (one who
never had one, first of all), then the older job: without that, a user's next scene would take turn 1 the
moment their previous one finished and go ahead of a scene that had waited for it, as its older creation
time would say. Jobs holding a lease (a stage running) come before all waiting ones: they are under way.
"""

from __future__ import annotations

from sqlalchemy import Subquery, case, func, select

from vidscene.db.models import ACTIVE_STATES, Job, Scene


def _last_claims() -> Subquery:
    """When each user with unfinished jobs last had a stage handed out (any of their jobs, finished ones too)."""
    waiting_users = select(Scene.user_id).join(Job, Job.scene_id == Scene.id).where(Job.state.in_(ACTIVE_STATES))
    return (select(Scene.user_id, func.max(Job.stage_started_at).label("last_claim"))
            .join(Job, Job.scene_id == Scene.id)
            .where(Scene.user_id.in_(waiting_users))
            .group_by(Scene.user_id).subquery("last_claims"))


def fair_queue() -> Subquery:
    """Every unfinished job with its 0-based ``place`` in the queue (and its owner's ``user_id``).

    One window over the unfinished jobs: a caller filters it (a queue's waiting stages) and orders by
    ``place``, or looks one job up in it.
    """
    claims = _last_claims()
    turn = func.row_number().over(partition_by=Scene.user_id, order_by=(Job.created_at, Job.id))
    jobs = (select(Job.id.label("job_id"), Scene.user_id, Job.created_at, Job.lease_owner, turn.label("turn"),
                   claims.c.last_claim)
            .join(Scene, Scene.id == Job.scene_id)
            .outerjoin(claims, claims.c.user_id == Scene.user_id)
            .where(Job.state.in_(ACTIVE_STATES))
            .subquery("unfinished"))
    place = func.row_number().over(order_by=(
        case((jobs.c.lease_owner.is_(None), 1), else_=0),
        jobs.c.turn,
        jobs.c.last_claim.asc().nulls_first(),
        jobs.c.created_at,
        jobs.c.job_id,
    )) - 1
    return select(jobs.c.job_id, jobs.c.user_id, place.label("place")).subquery("fair_queue")
