"""Email templates: each a subject, a plain text body and an HTML body, filled with escaped values."""

from __future__ import annotations

import html
import string
from dataclasses import dataclass

from tripsage.functions.email import Email

_HTML_FRAME = string.Template(
    """<!doctype html>
<html><body style="font-family: -apple-system, Segoe UI, Roboto, sans-serif; color: #1f2933; max-width: 560px;">
<h2 style="color: #0b7285;">$heading</h2>
$body
<p style="color: #7b8794; font-size: 12px;">TripSage &middot; you receive this because of activity on your account.</p>
</body></html>
"""
)


@dataclass(frozen=True)
class Template:
    subject: str
    text: str
    html: str

    def render(self, recipient: str, values: dict[str, str]) -> Email:
        escaped = {key: html.escape(value) for key, value in values.items()}
        subject = string.Template(self.subject).substitute(values)
        body_html = string.Template(self.html).substitute(escaped)
        return Email(
            recipient=recipient,
            subject=subject,
            body_text=string.Template(self.text).substitute(values),
            body_html=_HTML_FRAME.substitute(heading=html.escape(subject), body=body_html),
        )


COLLABORATOR_ADDED = Template(
    subject="You've been added to $trip_name",
    text=(
        'Hi $recipient_name,\n\n$actor_name added you to the trip "$trip_name" ($destination, $dates) '
        "with $permission access.\n\nOpen TripSage to see the plan.\n"
    ),
    html=(
        "<p>Hi $recipient_name,</p><p>$actor_name added you to the trip <strong>$trip_name</strong> "
        "($destination, $dates) with <strong>$permission</strong> access.</p><p>Open TripSage to see the plan.</p>"
    ),
)
COLLABORATOR_ADDED_OWNER = Template(
    subject="$collaborator_name joined $trip_name",
    text='Hi $recipient_name,\n\n$collaborator_name now has $permission access to "$trip_name" ($destination).\n',
    html=(
        "<p>Hi $recipient_name,</p><p>$collaborator_name now has <strong>$permission</strong> access to "
        "<strong>$trip_name</strong> ($destination).</p>"
    ),
)
COLLABORATOR_UPDATED = Template(
    subject="Your access to $trip_name changed",
    text=(
        'Hi $recipient_name,\n\n$actor_name changed your access to the trip "$trip_name" ($destination) '
        "from $old_permission to $permission.\n"
    ),
    html=(
        "<p>Hi $recipient_name,</p><p>$actor_name changed your access to the trip <strong>$trip_name</strong> "
        "($destination) from $old_permission to <strong>$permission</strong>.</p>"
    ),
)
COLLABORATOR_REMOVED = Template(
    subject="You were removed from $trip_name",
    text='Hi $recipient_name,\n\n$actor_name removed you from the trip "$trip_name" ($destination).\n',
    html=(
        "<p>Hi $recipient_name,</p><p>$actor_name removed you from the trip <strong>$trip_name</strong> "
        "($destination).</p>"
    ),
)
BOOKING_CONFIRMED = Template(
    subject="Booking confirmed for $trip_name",
    text=(
        'Hi $recipient_name,\n\nYour $booking_kind booking #$booking_id for "$trip_name" ($destination, $dates) '
        "is confirmed.\n"
    ),
    html=(
        "<p>Hi $recipient_name,</p><p>Your $booking_kind booking #$booking_id for <strong>$trip_name</strong> "
        "($destination, $dates) is <strong>confirmed</strong>.</p>"
    ),
)
API_KEY_EXPIRING = Template(
    subject="Your $service_name API key expires soon",
    text=(
        'Hi $recipient_name,\n\nYour $service_name API key "$key_name" expires on $expires_at. '
        "Replace it in TripSage before then to keep the service working.\n"
    ),
    html=(
        "<p>Hi $recipient_name,</p><p>Your $service_name API key <strong>$key_name</strong> expires on "
        "<strong>$expires_at</strong>. Replace it in TripSage before then to keep the service working.</p>"
    ),
)
