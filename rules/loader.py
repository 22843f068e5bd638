"""Load policy files, identify each version by content hash, pick the version in force on a date."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from rules.model import Policy

DEFAULT_POLICY_DIR = Path(__file__).parent / "policies"


class PolicyError(ValueError):
    """A policy file is invalid, or a set of policy files contradicts itself."""

    def __init__(self, file: str, path: str, reason: str):
        self.file, self.path, self.reason = file, path, reason
        super().__init__(f"{file}: {path or '(top)'}: {reason}")


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy = field(repr=False)
    hash: str  # sha256 of the canonical JSON of the validated content
    file: str

    @property
    def version(self) -> str:
        return self.policy.version

    ruleset_name: str = field(init=False, repr=False)  # version + hash: the name it is registered under, once

    def __post_init__(self) -> None:
        object.__setattr__(self, "ruleset_name", f"{self.policy.version}-{self.hash[:16]}")


def policy_hash(policy: Policy) -> str:
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _error_path(location: tuple) -> str:
    return ".".join(str(part) for part in location)


def parse_policy(text: str, file: str = "<policy>") -> LoadedPolicy:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise PolicyError(file, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise PolicyError(file, "", "a policy file is a YAML mapping")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PolicyError(file, _error_path(first["loc"]), reason + more) from None
    return LoadedPolicy(policy=policy, hash=policy_hash(policy), file=file)


def load_policy_file(path: Path | str) -> LoadedPolicy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), "", f"cannot read: {exc.strerror}") from None
    return parse_policy(text, str(path))


class PolicyRegistry:
    """All policy versions of one union, none overlapping in time."""

    def __init__(self, policies: list[LoadedPolicy]):
        if not policies:
            raise PolicyError("<registry>", "", "no policy versions")
        ordered = sorted(policies, key=lambda p: p.policy.effective_from)
        seen: dict[str, LoadedPolicy] = {}
        for loaded in ordered:
            if loaded.version in seen:
                raise PolicyError(loaded.file, "version", f"version {loaded.version!r} also in {seen[loaded.version].file}")
            seen[loaded.version] = loaded
        for earlier, later in zip(ordered, ordered[1:]):
            end = earlier.policy.effective_to
            if end is None or end >= later.policy.effective_from:
                raise PolicyError(
                    later.file,
                    "effective_from",
                    f"overlaps {earlier.version!r} ({earlier.file}), in force until "
                    f"{end or 'further notice'}; close it with effective_to before {later.policy.effective_from}",
                )
        self._ordered = ordered

    @classmethod
    def from_directory(cls, directory: Path | str = DEFAULT_POLICY_DIR) -> PolicyRegistry:
        files = sorted(Path(directory).glob("*.yaml"))
        return cls([load_policy_file(f) for f in files])

    @property
    def versions(self) -> list[LoadedPolicy]:
        return list(self._ordered)

    def for_date(self, day: dt.date) -> LoadedPolicy | None:
        """The version in force on ``day`` (an event date), or None."""
        return next((p for p in self._ordered if p.policy.in_force_on(day)), None)

    def get(self, version: str, content_hash: str | None = None) -> LoadedPolicy | None:
        found = next((p for p in self._ordered if p.version == version), None)
        if found is not None and content_hash is not None and found.hash != content_hash:
            return None
        return found


@cache
def default_registry() -> PolicyRegistry:
    return PolicyRegistry.from_directory(DEFAULT_POLICY_DIR)
