"""SQLAlchemy 2 models of the entity database. They must equal the alembic head exactly (a
test runs alembic's autogenerate comparison)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Project(Base):
    """One notes folder. `uuid` is its identity, also recorded in the folder's index (so a
    moved folder keeps its project: `bm_sync.identity`). `index_token` is also written into
    the index, so that a sync notices a database that is not the one the index was recorded
    against. `root_path` is where the folder was last synced, `root_identity` the device and
    inode of the folder first synced as this project (a copy has other ones)."""

    __tablename__ = "project"
    __table_args__ = (Index("ix_project_uuid", "uuid", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str | None] = mapped_column(String, nullable=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    root_path: Mapped[str] = mapped_column(String, nullable=False, unique=True)
    root_identity: Mapped[str | None] = mapped_column(String, nullable=True)
    index_token: Mapped[str | None] = mapped_column(String, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now,
                                                 onupdate=utc_now)


class Entity(Base):
    """A tracked file. `checksum` is the content id from the index, `checksum_kind` how it was
    computed (full / partial / none). `permalink` and `tags` (frontmatter tags, a JSON list)
    are set for markdown notes only."""

    __tablename__ = "entity"
    __table_args__ = (
        UniqueConstraint("project_id", "file_path", name="uq_entity_project_file_path"),
        UniqueConstraint("project_id", "permalink", name="uq_entity_project_permalink"),
        Index("ix_entity_project_title", "project_id", "title"),
        Index("ix_entity_project_wanted_permalink", "project_id", "wanted_permalink"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False)
    file_path: Mapped[str] = mapped_column(String, nullable=False)
    permalink: Mapped[str | None] = mapped_column(String, nullable=True)
    title: Mapped[str] = mapped_column(String, nullable=False)
    entity_type: Mapped[str] = mapped_column(String, nullable=False)
    content_type: Mapped[str] = mapped_column(String, nullable=False)
    checksum: Mapped[str | None] = mapped_column(String, nullable=True)
    checksum_kind: Mapped[str | None] = mapped_column(String, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mtime: Mapped[float | None] = mapped_column(Float, nullable=True)
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list, notes only
    # The permalink the note wants and did not get (held by another note), and whether its
    # frontmatter set it; both NULL once settled. Each sync's end hands it over when free.
    wanted_permalink: Mapped[str | None] = mapped_column(String, nullable=True)
    wanted_permalink_explicit: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now,
                                                 onupdate=utc_now)


class Observation(Base):
    """`- [category] content #tag (context)` in a note. `tags` is a JSON list."""

    __tablename__ = "observation"
    __table_args__ = (Index("ix_observation_entity_id", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_id: Mapped[int] = mapped_column(
        ForeignKey("entity.id", ondelete="CASCADE"), nullable=False)
    category: Mapped[str] = mapped_column(String, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)
    context: Mapped[str | None] = mapped_column(Text, nullable=True)


class Relation(Base):
    """`- relation_type [[to_name]]`; `to_id` is NULL while the target does not exist."""

    __tablename__ = "relation"
    __table_args__ = (
        Index("ix_relation_from_id", "from_id"),
        Index("ix_relation_to_id", "to_id"),
        Index("ix_relation_to_name", "to_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_id: Mapped[int] = mapped_column(
        ForeignKey("entity.id", ondelete="CASCADE"), nullable=False)
    to_id: Mapped[int | None] = mapped_column(
        ForeignKey("entity.id", ondelete="SET NULL"), nullable=True)
    to_name: Mapped[str] = mapped_column(String, nullable=False)
    relation_type: Mapped[str] = mapped_column(String, nullable=False)
    context: Mapped[str | None] = mapped_column(Text, nullable=True)


class SyncFailure(Base):
    """The circuit breaker's memory: consecutive failures of a path, across runs."""

    __tablename__ = "sync_failure"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    file_path: Mapped[str] = mapped_column(String, primary_key=True)
    content_id: Mapped[str | None] = mapped_column(String, nullable=True)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    first_failed_at: Mapped[float] = mapped_column(Float, nullable=False)
    last_failed_at: Mapped[float] = mapped_column(Float, nullable=False)


class SyncRun(Base):
    """One sync that applied at least one change. `status` is "interrupted" until the run's
    last commit marks it "completed": a killed run stays interrupted."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_project_started", "project_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False)
    started_at: Mapped[float] = mapped_column(Float, nullable=False)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    added: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    modified: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    deleted: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    moved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String, nullable=False)


class FileChange(Base):
    """One applied change, written in the same transaction as the entity change itself."""

    __tablename__ = "file_change"
    __table_args__ = (
        Index("ix_file_change_project_path", "project_id", "path"),
        Index("ix_file_change_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("sync_run.id", ondelete="CASCADE"), nullable=False)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    path: Mapped[str] = mapped_column(String, nullable=False)
    old_path: Mapped[str | None] = mapped_column(String, nullable=True)
    content_id: Mapped[str | None] = mapped_column(String, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mtime: Mapped[float | None] = mapped_column(Float, nullable=True)


# The fleet (issue 11, migration 0009; docs/deploy.md): the registry of projects a worker
# keeps in sync, with their schedule state and lease, and the record of every worker sync.

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
