"""What the API accepts and returns. Unknown fields are refused; money is integer fen.

Text may not carry control characters (a NUL byte is refused by PostgreSQL, the rest are never meant);
id-card and bank-account numbers typed into free text are masked on the way in, so they reach neither
the workflow history nor a response nor a log line.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

from rules.facts import MAX_FEN, Household
from rules.model import SchoolLevel
from service.security import mask_personal_numbers

MAX_DB_ID = 2**31 - 1  # database ids are 32-bit integers on PostgreSQL; larger ones can name nothing
Fen = Annotated[StrictInt, Field(ge=0, le=MAX_FEN)]
DbId = Annotated[StrictInt, Field(ge=1, le=MAX_DB_ID)]
ShortText = Annotated[str, Field(max_length=120), AfterValidator(mask_personal_numbers)]
FreeText = Annotated[str, Field(max_length=2000), AfterValidator(mask_personal_numbers)]
# For query and path parameters: no control characters (tab, newline and carriage return aside).
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _refuse_control_characters(value: Any) -> None:
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("text may not contain control characters")
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_control_characters(item)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        _refuse_control_characters(value)
        return value


class Credentials(Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime
    username: str
    roles: dict[str, list[str]]


class ApplicationCreate(Strict):
    member_id: DbId | None = Field(default=None, description="omit to file for yourself")
    benefit: Annotated[str, Field(min_length=1, max_length=48)]
    event_date: dt.date
    requested_fen: Fen = 0
    evidence: list[Annotated[str, Field(max_length=48)]] = Field(default=[], max_length=20)
    event_key: ShortText | None = Field(default=None, description="what identifies the event: the hospital stay, the child")
    relative_id: DbId | None = None
    school_level: SchoolLevel | None = None
    household: Household | None = None
    note: FreeText | None = None


class Amendment(Strict):
    requested_fen: Fen
    evidence: list[Annotated[str, Field(max_length=48)]] = Field(default=[], max_length=20)
    event_key: ShortText | None = None
    relative_id: DbId | None = None
    school_level: SchoolLevel | None = None
    household: Household | None = None
    note: FreeText | None = None


class TaskDecision(Strict):
    action: Literal["approve", "reject", "return", "flag"]
    comment: FreeText | None = None
    amount_fen: Fen | None = Field(default=None, description="only when the rules referred the case to a person")


class Objection(Strict):
    text: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(mask_personal_numbers)]


class Revocation(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(mask_personal_numbers)]


class TaskOut(BaseModel):
    id: str
    application_id: str
    stage: str
    role: str
    assignee_user_id: int | None
    status: str
    outcome: str | None
    comment: str | None
    decided_by_user_id: int | None
    due_at: dt.datetime | None
    reminded: bool
    escalated: bool
    created_at: dt.datetime
    decided_at: dt.datetime | None
    benefit: str | None = None
    member_name: str | None = None
    approved_fen: int | None = None


class ApplicationOut(BaseModel):
    id: str
    org_id: int
    member_id: int
    member_name: str | None = None
    benefit: str
    event_date: dt.date
    event_key: str | None
    requested_fen: int
    approved_fen: int
    status: str
    stage: str | None
    outcome: str | None
    decision: dict[str, Any] | None
    policy_version: str | None
    policy_hash: str | None
    details: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    tasks: list[TaskOut] = []
    history: list[dict[str, Any]] = []


class Page(BaseModel):
    items: list[Any]
    total: int
    page: int
    page_size: int


class RelativeIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    relation: Literal["spouse", "parent", "child", "sibling", "grandparent", "grandchild", "other"]
    birth_date: dt.date | None = None
    relative_member_no: Annotated[str, Field(max_length=32)] | None = None


class MemberCreate(Strict):
    member_no: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    id_card: Annotated[str, Field(pattern=r"^\d{17}[\dXx]$")]
    birth_date: dt.date
    join_date: dt.date
    status: Literal["active", "retired", "left"] = "active"
    relatives: list[RelativeIn] = Field(default=[], max_length=30)


class MemberUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    status: Literal["active", "retired", "left"] | None = None
    retired_on: dt.date | None = None
    relatives: list[RelativeIn] | None = Field(default=None, max_length=30)


class RelativeOut(BaseModel):
    id: int
    name: str
    relation: str
    birth_date: dt.date | None
    relative_member_id: int | None


class MemberOut(BaseModel):
    id: int
    member_no: str
    org_id: int
    name: str
    id_card_masked: str
    birth_date: dt.date
    join_date: dt.date
    status: str
    retired_on: dt.date | None
    relatives: list[RelativeOut] = []


class ImportRowError(BaseModel):
    row: int
    field: str
    reason_zh: str
    reason_en: str


class ImportResult(BaseModel):
    imported: int
    errors: list[ImportRowError]


class FundOut(BaseModel):
    id: int
    org_id: int
    year: int
    code: str
    name_zh: str
    name_en: str
    budget_fen: int
    reserved_fen: int
    spent_fen: int
    available_fen: int


class BudgetRaise(Strict):
    amount_fen: Annotated[StrictInt, Field(ge=1, le=MAX_FEN)]
