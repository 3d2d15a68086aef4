"""What happened to a run's data: the sender's :class:`SendReport`, returned by
``finish()`` and told in one line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SendReport:
    """What happened to a run's data (returned by ``finish``)."""

    sent_points: int = 0
    sent_media: int = 0  # media items (a key at a step) the server accepted
    duplicate_batches: int = 0
    spooled_ops: int = 0
    spooled_points: int = 0
    set_aside_ops: int = 0  # the server would not take them (see ._rejected)
    set_aside_points: int = 0
    set_aside_first: str | None = None  # the server's answer to the first one
    unsent_items: int = 0  # log() calls not yet converted (thread did not stop in time)
    unsent_points: int = 0  # converted points neither delivered nor spooled
    spool_path: str | None = None
    rejected_path: str | None = None
    errors: list[str] = field(default_factory=list)

    def media_part(self) -> str:
        return f" and {self.sent_media} media items" if self.sent_media else ""

    def describe(self) -> str:
        parts = [f"{self.sent_points} points" + self.media_part() + " sent"]
        if self.spooled_points or self.spooled_ops:
            parts.append(
                f"{self.spooled_points} points ({self.spooled_ops} operations) waiting in "
                f"{self.spool_path}: they are sent on the next connection or by `wanllm sync`"
            )
        if self.unsent_items or self.unsent_points:
            parts.append(
                f"{self.unsent_items} log() calls and {self.unsent_points} points still in "
                "memory (the sender did not stop in time)"
            )
        if self.set_aside_ops:
            parts.append(
                f"{self.set_aside_ops} operations ({self.set_aside_points} points) the server "
                f"would not take set aside in {self.rejected_path}, the first because: "
                f"{self.set_aside_first} (`wanllm sync --retry-rejected` sends them again)"
            )
        return "; ".join(parts)
