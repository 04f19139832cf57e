"""flickr.photos.upload.checkTickets: how async uploads went (FLICKR-API.md §3.4)."""

from __future__ import annotations

from ..rsp import Node, node
from .base import Call, method


@method("flickr.photos.upload.checkTickets")
def check_tickets(call: Call) -> list[Node]:
    tickets = []
    for ticket_id in (t.strip() for t in call.arg("tickets").split(",")):
        if not ticket_id:
            continue
        ticket = call.state.tickets.get(ticket_id)
        if ticket is None:
            tickets.append(node("ticket", {"id": ticket_id, "invalid": 1}))
            continue
        attrs: dict[str, str | int | None] = {"id": ticket.id, "complete": ticket.complete}
        if ticket.complete == 1:
            attrs["photoid"] = ticket.photo_id
            attrs["imported"] = str(int(ticket.created))
        tickets.append(node("ticket", attrs))
    return [node("uploader", children=tickets, arrays=("ticket",))]
