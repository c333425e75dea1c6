"""Tables of the multi-project layer (migration 0009): the registry of projects a worker keeps
in sync, with each project's schedule state and lease, and the record of every worker sync.

They live in whatever database holds the projects' rows (`--db`, or the per-user default), so
the registry, the schedule state and the coordination of a fleet of workers are all rows of
one database: no coordinator besides it. Why a lease row and not an advisory lock:
docs/deploy.md.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bm_sync.db.models import Base, utc_now


class RegisteredProject(Base):
    """A folder registered with `bm project add`. `last_*` describe the last sync a worker (or
    `bm sync --all`) ran; `consecutive_failures` and `not_before` are the backoff, kept here so
    it survives restarts. `lease_holder`/`lease_expires_at` is the lease: a worker syncs the
    project only while it holds an unexpired lease (epoch seconds of the worker's clock)."""

    __tablename__ = "registered_project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False, unique=True)
    root_path: Mapped[str] = mapped_column(String, nullable=False, unique=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    last_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_result: Mapped[str | None] = mapped_column(String, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_files: Mapped[int | None] = mapped_column(Integer, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    not_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_holder: Mapped[str | None] = mapped_column(String, nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class WorkerRun(Base):
    """One sync a worker (or `bm sync --all`) ran: who, from when to when. `lease_until` is
    the lease's expiry as last renewed, the end of a run whose worker was killed (`ended_at`
    stays NULL). These rows make "never two syncs of a project at once" checkable."""

    __tablename__ = "worker_run"
    __table_args__ = (Index("ix_worker_run_project_started", "registered_project_id",
                            "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registered_project_id: Mapped[int] = mapped_column(
        ForeignKey("registered_project.id", ondelete="CASCADE"), nullable=False)
    worker: Mapped[str] = mapped_column(String, nullable=False)
    started_at: Mapped[float] = mapped_column(Float, nullable=False)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_until: Mapped[float] = mapped_column(Float, nullable=False)
    result: Mapped[str | None] = mapped_column(String, nullable=True)
