"""trip-events: notifications (and emails) for collaborator changes, confirmed bookings and expiring API keys.

Each event is handled in one transaction: the notification rows and the queued emails commit together with the
webhook-id, so a redelivered event creates no second notification or email. Emails leave after commit (the
component's sender drains functions.email_outbox). Without SMTP settings only the notifications are written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tripsage import queries_for
from tripsage.db.connector import Jsonb
from tripsage.functions import templates
from tripsage.functions.app import (
    Call,
    Context,
    Handler,
    Work,
    acknowledge_test_event,
    field_int,
    field_text,
    field_uuid,
    unit_of_work,
)
from tripsage.functions.errors import BadRequest

Q = queries_for("tripsage.functions")
PERMISSIONS = ("view", "edit", "admin")


def _dates(trip: dict[str, Any]) -> str:
    start, end = trip["start_date"], trip["end_date"]
    return f"{start:%b %d} - {end:%b %d, %Y}" if start != end else f"{start:%b %d, %Y}"


async def _contacts(work: Work, user_ids: list[str | None]) -> dict[str, dict[str, Any]]:
    ids = sorted({user_id for user_id in user_ids if user_id})
    rows = await work.fetch_all(Q["user_contacts"], {"user_ids": ids})
    return {str(row["user_id"]): row for row in rows}


async def _notify(
    work: Work, call: Call, *, user_id: str, kind: str, title: str, message: str, metadata: dict[str, Any], role: str
) -> bool:
    row = await work.fetch_one(
        Q["insert_notification"],
        {
            "user_id": user_id,
            "type": kind,
            "title": title,
            "message": message,
            "metadata": Jsonb(metadata),
            "dedupe_key": f"{call.function}:{call.dedupe_base}:{role}",
        },
    )
    return row is not None


async def _email(
    work: Work,
    context: Context,
    *,
    key: str,
    contact: dict[str, Any] | None,
    template: templates.Template,
    values: dict[str, str],
) -> bool:
    if not context.email_enabled or contact is None or not contact.get("email"):
        return False
    item = template.render(contact["email"], {**values, "recipient_name": contact["display_name"] or "there"})
    row = await work.fetch_one(
        Q["queue_email"],
        {
            "dedupe_key": key,
            "recipient": item.recipient,
            "subject": item.subject,
            "body_text": item.body_text,
            "body_html": item.body_html,
        },
    )
    if row is not None:
        work.emails_queued += 1
    return row is not None


def _name(contacts: dict[str, dict[str, Any]], user_id: str | None, fallback: str) -> str:
    contact = contacts.get(user_id or "")
    return str(contact["display_name"]) if contact and contact.get("display_name") else fallback


async def collaborator_event(context: Context, call: Call) -> dict[str, Any]:
    data = call.data
    trip_id = field_int(data, "trip_id")
    user_id = field_uuid(data, "user_id")
    assert user_id is not None
    permission = field_text(data, "permission_level")
    if permission not in PERMISSIONS:
        raise BadRequest(f"data.permission_level must be one of {', '.join(PERMISSIONS)}", code="invalid_data")
    actor_id = field_uuid(data, "actor_id", required=False) or field_uuid(data, "added_by", required=False)
    old_permission = field_text(data, "old_permission_level", required=False, default="")
    action = call.event_type.rsplit(".", 1)[1]
    async with unit_of_work(context, call) as work:
        trip = await work.fetch_one(Q["trip"], {"trip_id": trip_id})
        if trip is None:
            # The trip is gone (deleting a trip removes its collaborators): nothing to tell anyone.
            work.response = {"notifications": 0, "emails": 0, "skipped": "the trip no longer exists"}
            return work.response
        owner_id = str(trip["user_id"])
        actor_id = actor_id or owner_id
        contacts = await _contacts(work, [user_id, owner_id, actor_id])
        values = {
            "trip_name": trip["name"],
            "destination": trip["destination"],
            "dates": _dates(trip),
            "permission": permission,
            "old_permission": old_permission or "none",
            "actor_name": _name(contacts, actor_id, "A trip owner"),
            "collaborator_name": _name(contacts, user_id, "A collaborator"),
        }
        metadata = {
            "trip_id": trip_id,
            "trip_name": trip["name"],
            "destination": trip["destination"],
            "permission_level": permission,
            "actor_id": actor_id,
        }
        notifications = emails = 0
        kind, title, message, template = {
            "added": (
                "trip_collaboration_invite",
                "You've been added to a trip",
                f'{values["actor_name"]} added you to "{trip["name"]}" ({trip["destination"]}) '
                f"with {permission} access",
                templates.COLLABORATOR_ADDED,
            ),
            "updated": (
                "trip_collaboration_updated",
                "Your trip access changed",
                f'Your access to "{trip["name"]}" changed from {values["old_permission"]} to {permission}',
                templates.COLLABORATOR_UPDATED,
            ),
            "removed": (
                "trip_collaboration_removed",
                "You were removed from a trip",
                f'{values["actor_name"]} removed you from "{trip["name"]}" ({trip["destination"]})',
                templates.COLLABORATOR_REMOVED,
            ),
        }[action]
        if user_id != actor_id:
            notifications += await _notify(
                work,
                call,
                user_id=user_id,
                kind=kind,
                title=title,
                message=message,
                metadata=metadata,
                role="collaborator",
            )
            emails += await _email(
                work,
                context,
                key=f"{call.function}:{call.dedupe_base}:collaborator",
                contact=contacts.get(user_id),
                template=template,
                values=values,
            )
        if action == "added" and actor_id != owner_id and owner_id != user_id:
            # Someone else (an admin collaborator) shared the owner's trip: the owner hears of it.
            notifications += await _notify(
                work,
                call,
                user_id=owner_id,
                kind="trip_collaborator_joined",
                title="A collaborator joined your trip",
                message=f'{values["collaborator_name"]} now has {permission} access to "{trip["name"]}"',
                metadata={**metadata, "collaborator_id": user_id},
                role="owner",
            )
            emails += await _email(
                work,
                context,
                key=f"{call.function}:{call.dedupe_base}:owner",
                contact=contacts.get(owner_id),
                template=templates.COLLABORATOR_ADDED_OWNER,
                values=values,
            )
        work.response = {"notifications": notifications, "emails": emails}
    return work.response


async def booking_confirmed(context: Context, call: Call) -> dict[str, Any]:
    data = call.data
    trip_id = field_int(data, "trip_id")
    booking_id = field_int(data, "booking_id")
    booking_kind = field_text(data, "booking_type", required=False, default="booking").rstrip("s") or "booking"
    async with unit_of_work(context, call) as work:
        trip = await work.fetch_one(Q["trip"], {"trip_id": trip_id})
        if trip is None:
            work.response = {"notifications": 0, "emails": 0, "skipped": "the trip no longer exists"}
            return work.response
        user_id = field_uuid(data, "user_id", required=False) or str(trip["user_id"])
        contacts = await _contacts(work, [user_id])
        values = {
            "trip_name": trip["name"],
            "destination": trip["destination"],
            "dates": _dates(trip),
            "booking_kind": {"flight": "flight", "accommodation": "accommodation"}.get(booking_kind, booking_kind),
            "booking_id": str(booking_id),
        }
        notifications = await _notify(
            work,
            call,
            user_id=user_id,
            kind="booking_confirmed",
            title="Booking confirmed",
            message=f'Your {values["booking_kind"]} booking for "{trip["name"]}" is confirmed',
            metadata={"trip_id": trip_id, "booking_id": booking_id, "booking_type": data.get("booking_type")},
            role="owner",
        )
        emails = await _email(
            work,
            context,
            key=f"{call.function}:{call.dedupe_base}:owner",
            contact=contacts.get(user_id),
            template=templates.BOOKING_CONFIRMED,
            values=values,
        )
        work.response = {"notifications": int(notifications), "emails": int(emails)}
    return work.response


async def api_key_expiring(context: Context, call: Call) -> dict[str, Any]:
    """The scheduler's monitor-expiring-api-keys wrote the notification; this sends the email (keyed by the key and
    its expiry, so a redelivery or a re-run sends nothing twice)."""
    data = call.data
    user_id = field_uuid(data, "user_id")
    assert user_id is not None
    key_id = data.get("api_key_id", data.get("key_id"))
    if isinstance(key_id, bool) or not isinstance(key_id, int):
        raise BadRequest("data.api_key_id is required and must be an integer", code="invalid_data")
    service_name = field_text(data, "service_name")
    key_name = field_text(data, "key_name")
    expires_text = field_text(data, "expires_at")
    try:
        expires_at = dt.datetime.fromisoformat(expires_text)
    except ValueError as error:
        raise BadRequest("data.expires_at must be an ISO 8601 timestamp", code="invalid_data") from error
    async with unit_of_work(context, call) as work:
        contacts = await _contacts(work, [user_id])
        emails = await _email(
            work,
            context,
            key=f"api_key.expiring:{key_id}:{int(expires_at.timestamp())}",
            contact=contacts.get(user_id),
            template=templates.API_KEY_EXPIRING,
            values={
                "service_name": service_name,
                "key_name": key_name,
                "expires_at": expires_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            },
        )
        work.response = {"notifications": 0, "emails": int(emails)}
    return work.response


HANDLERS: dict[str, Handler] = {
    "trip.collaborator.added": collaborator_event,
    "trip.collaborator.updated": collaborator_event,
    "trip.collaborator.removed": collaborator_event,
    "booking.confirmed": booking_confirmed,
    "api_key.expiring": api_key_expiring,
    "test.webhook": acknowledge_test_event,
}
