"""Authentication: argon2 password hashes, tokens kept only as digests, tokens that expire, logout that
revokes, lockout after repeated failures (and its end), the same answer for an unknown user."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from service.models import ApiToken, User

from ..api.conftest import PASSWORD


async def test_passwords_are_argon2_and_tokens_are_stored_as_digests(service):
    r = await service.http.post("/api/auth/token", json={"username": "clerk", "password": PASSWORD})
    assert r.status_code == 200
    token, expires = r.json()["access_token"], dt.datetime.fromisoformat(r.json()["expires_at"])
    assert dt.timedelta(minutes=5) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    with Session(service.engine) as s:
        users = s.exec(select(User)).all()
        tokens = s.exec(select(ApiToken)).all()
    assert users and all(u.password_hash.startswith("$argon2id$") for u in users)
    assert all(PASSWORD not in u.password_hash for u in users)
    assert tokens and all(t.token_digest != token and len(t.token_digest) == 64 for t in tokens)


async def test_an_expired_token_is_refused(service):
    headers = await service.login("chair")
    assert (await service.http.get("/api/tasks", headers=headers)).status_code == 200
    with Session(service.engine) as s, s.begin():
        for t in s.exec(select(ApiToken)).all():
            t.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    r = await service.http.get("/api/tasks", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_logout_revokes_only_that_token(service):
    first = (await service.http.post("/api/auth/token", json={"username": "admin", "password": PASSWORD})).json()["access_token"]
    second = (await service.http.post("/api/auth/token", json={"username": "admin", "password": PASSWORD})).json()["access_token"]
    out = await service.http.post("/api/auth/logout", headers={"Authorization": f"Bearer {first}"})
    assert out.status_code == 204
    assert (await service.http.get("/api/funds", headers={"Authorization": f"Bearer {first}"})).status_code == 401
    assert (await service.http.get("/api/funds", headers={"Authorization": f"Bearer {second}"})).status_code == 200
    assert (await service.http.post("/api/auth/logout", headers={"Authorization": f"Bearer {first}"})).status_code == 401


async def test_lockout_holds_against_the_right_password_then_ends(service):
    for _ in range(5):
        assert (await service.http.post("/api/auth/token", json={"username": "committee2", "password": "guess"})).status_code == 401
    locked = await service.http.post("/api/auth/token", json={"username": "committee2", "password": PASSWORD})
    assert locked.status_code == 423 and locked.json()["locked_until"]
    with Session(service.engine) as s, s.begin():  # the lockout's minutes pass
        user = s.exec(select(User).where(User.username == "committee2")).one()
        user.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    ok = await service.http.post("/api/auth/token", json={"username": "committee2", "password": PASSWORD})
    assert ok.status_code == 200
    with Session(service.engine) as s:
        user = s.exec(select(User).where(User.username == "committee2")).one()
    assert user.failed_logins == 0 and user.locked_until is None


async def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(service):
    unknown = await service.http.post("/api/auth/token", json={"username": "nobody", "password": "guess"})
    wrong = await service.http.post("/api/auth/token", json={"username": "clerk", "password": "guess"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
