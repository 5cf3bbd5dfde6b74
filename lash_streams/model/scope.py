"""Session scopes (ID-2)."""

from __future__ import annotations

from lash_streams.model._base import Wire


class SessionScope(Wire, frozen=True, kw_only=True):
    session_id: str
    agent_frame_id: str | None = None

    def id(self) -> str:
        """ID-2: ``session:<sid>`` or ``session:<sid>/frame:<fid>``."""
        if self.agent_frame_id:
            return f"session:{self.session_id}/frame:{self.agent_frame_id}"
        return f"session:{self.session_id}"
