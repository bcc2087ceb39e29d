"""What `MatrixClient` reads about rooms and spaces: state, memberships, timelines, the
filtered `/sync` and the space hierarchy. Every read goes through the client's `_call`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from app.errors import MalformedResponse, MatrixNotFound
from app.http.calls import ApiCall
from app.matrix import api
from app.matrix.types import HierarchyPage, HierarchyRoom, MessagesPage, RoomEvent, StateEvent


class RoomReads:
    async def _call(self, call: ApiCall) -> Any:
        raise NotImplementedError  # MatrixClient's: the token, re-login and appservice rules

    async def get_state(self, room_id: str) -> list[StateEvent]:
        data = await self._call(api.get_state(room_id))
        if not isinstance(data, list):
            raise MalformedResponse(200, "room state: expected a list of events")
        return [event for event in map(StateEvent.parse, data) if event is not None]

    async def get_state_event(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        """The content of one state event, or None if the room has no such event."""
        try:
            data = await self._call(api.get_state_event(room_id, event_type, state_key))
        except MatrixNotFound:
            return None
        return data if isinstance(data, dict) else None

    async def sync(self, filter_json: str, since: str | None = None, timeout_ms: int = 0) -> Any:
        """One filtered `/sync`; the raw body (`app.matrix.view` reads it)."""
        return await self._call(
            api.sync(filter_json=filter_json, since=since, timeout_ms=timeout_ms)
        )

    async def joined_rooms(self) -> list[str]:
        data = await self._call(api.joined_rooms())
        rooms = data.get("joined_rooms") if isinstance(data, dict) else None
        if not isinstance(rooms, list):
            raise MalformedResponse(200, "joined_rooms: missing list field 'joined_rooms'")
        return [room for room in rooms if isinstance(room, str)]

    async def joined_members(self, room_id: str) -> dict[str, str | None]:
        """Joined user ids mapped to their display names in the room."""
        data = await self._call(api.joined_members(room_id))
        joined = data.get("joined") if isinstance(data, dict) else None
        if not isinstance(joined, dict):
            raise MalformedResponse(200, "joined_members: missing object field 'joined'")
        return {user: _display_name(info) for user, info in joined.items()}

    async def recent_events(
        self, room_id: str, *, page_size: int = 100, max_pages: int = 10
    ) -> AsyncIterator[RoomEvent]:
        """The room's events, newest first, back to its start or `max_pages` pages."""
        token: str | None = None
        for _ in range(max_pages):
            call = api.room_messages(room_id, limit=page_size, from_token=token)
            page = MessagesPage.parse(await self._call(call))
            for event in page.events:
                yield event
            if page.end is None or page.end == token or not page.events:
                return
            token = page.end

    async def hierarchy_page(
        self, space_id: str, *, limit: int | None = None, from_token: str | None = None
    ) -> HierarchyPage:
        call = api.space_hierarchy(space_id, limit=limit, from_token=from_token)
        return HierarchyPage.parse(await self._call(call))

    async def space_hierarchy(
        self, space_id: str, *, limit: int | None = None
    ) -> AsyncIterator[HierarchyRoom]:
        """Every room of the space's hierarchy, the space first, following `next_batch`."""
        seen_tokens: set[str] = set()
        token: str | None = None
        while True:
            page = await self.hierarchy_page(space_id, limit=limit, from_token=token)
            for room in page.rooms:
                yield room
            token = page.next_batch
            if token is None or token in seen_tokens:
                return
            seen_tokens.add(token)


def _display_name(info: Any) -> str | None:
    name = info.get("display_name") if isinstance(info, dict) else None
    return name if isinstance(name, str) else None
