"""Application-service calls: register a user of the namespace, act as one.

An appservice authenticates with its `as_token` and names the user it acts as with `user_id=`
on every request (see `MatrixClient(assert_user=True)`); it never logs in, so no device and no
password exist for its users. Requests so made are exempt from the homeserver's rate limits
when the registration says `rate_limited: false`.
"""

from __future__ import annotations

from app.errors import MatrixUserInUse
from app.http.calls import ApiCall
from app.matrix.api import V3
from app.matrix.client import MatrixClient

APPSERVICE_LOGIN = "m.login.application_service"


def register_appservice_user_call(localpart: str) -> ApiCall:
    """`POST /register` as the appservice: no password, and (`inhibit_login`) no device."""
    body = {"type": APPSERVICE_LOGIN, "username": localpart, "inhibit_login": True}
    # Repeating it is harmless: the second attempt answers M_USER_IN_USE.
    return ApiCall("POST", f"{V3}/register", body)


def acting_as(base: MatrixClient, as_token: str, user_id: str) -> MatrixClient:
    """A client that acts as `user_id` through the appservice, over `base`'s connections."""
    return base.as_user(user_id, as_token, assert_user=True)


async def register_appservice_user(base: MatrixClient, as_token: str, localpart: str) -> bool:
    """Register `localpart` in the appservice's namespace; False when it exists already."""
    try:
        await base.http.call(register_appservice_user_call(localpart), as_token)
    except MatrixUserInUse:
        return False
    return True
