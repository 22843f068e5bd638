"""Settings from the environment (DATABASE_URL, TEMPORAL_ADDRESS, ...), with single-machine defaults."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = ""  # empty: a SQLite file under data_dir
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "welfare"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_ui_port: int = 8233
    log_json: bool = False  # JSON lines in production; readable lines on a developer's terminal
    log_level: str = "INFO"
    token_ttl_minutes: int = 12 * 60
    id_card_key: str = "change-me-in-production"  # keys the id-card digests used for matching
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    evidence_dir: Path | None = None  # uploaded evidence files; default data_dir/evidence (never under the web root)
    evidence_max_bytes: int = 5 * 1024 * 1024  # per file
    evidence_max_files: int = 20  # per application

    @model_validator(mode="after")
    def _evidence_dir_default(self) -> Settings:
        if self.evidence_dir is None:
            self.evidence_dir = self.data_dir / "evidence"
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'welfare.db'}"


@cache
def get_settings() -> Settings:
    return Settings()
