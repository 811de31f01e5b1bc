//! What a carrier or a warehouse reports about a parcel: [`CarrierUpdate`] in, and the
//! [`TrackingEntry`] a delivery keeps in its history.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};

use crate::delivery::DeliveryStatus;
use crate::error::UpdateFieldError;

/// Text a carrier sends, checked once: trimmed, `1..=max` characters, no control characters.
fn bounded_text(field: &'static str, text: &str, max: usize) -> Result<String, UpdateFieldError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(UpdateFieldError::Empty { field });
    }
    if trimmed.chars().count() > max {
        return Err(UpdateFieldError::TooLong { field, max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(UpdateFieldError::ControlCharacter { field });
    }
    Ok(trimmed.to_owned())
}

macro_rules! carrier_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The longest value accepted, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Checks `text`: trimmed, 1 to [`Self::MAX_CHARS`] characters, no control
            /// characters.
            pub fn parse(text: &str) -> Result<Self, UpdateFieldError> {
                bounded_text($field, text, $max).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

carrier_text!(
    /// The carrier that moves the parcel, e.g. `DHL`.
    Carrier,
    "carrier",
    100
);
carrier_text!(
    /// The carrier's own tracking number (any format the carrier uses).
    CarrierTrackingNumber,
    "tracking_number",
    64
);
carrier_text!(
    /// Where the parcel was when the update was made, e.g. `Leipzig hub`.
    Location,
    "location",
    200
);
carrier_text!(
    /// A free-text remark, e.g. `left with neighbour at no. 12`.
    Note,
    "note",
    1000
);

/// One update about a parcel, as a carrier integration or the warehouse sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierUpdate {
    /// The status the parcel reached: one of [`DeliveryStatus::CARRIER_STATUSES`].
    pub status: DeliveryStatus,
    /// When it happened (not when it was reported), kept to the microsecond.
    pub occurred_at: DateTime<Utc>,
    /// The carrier, if the update names it (a dispatch usually does).
    pub carrier: Option<Carrier>,
    /// The carrier's tracking number, if the update names it.
    pub tracking_number: Option<CarrierTrackingNumber>,
    /// Where it happened.
    pub location: Option<Location>,
    /// A remark.
    pub note: Option<Note>,
}

impl CarrierUpdate {
    /// An update to `status` at `occurred_at`, with no other detail. `status` must be a
    /// carrier status ([`DeliveryStatus::CARRIER_STATUSES`]); `scheduled` and `cancelled`
    /// are the shop's own and are [`UpdateFieldError::NotACarrierStatus`].
    pub fn new(
        status: DeliveryStatus,
        occurred_at: DateTime<Utc>,
    ) -> Result<Self, UpdateFieldError> {
        if !status.is_carrier_status() {
            return Err(UpdateFieldError::NotACarrierStatus { status });
        }
        Ok(Self {
            status,
            occurred_at: occurred_at.trunc_subsecs(6),
            carrier: None,
            tracking_number: None,
            location: None,
            note: None,
        })
    }
}

/// One update in a delivery's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingEntry {
    /// The update as it was sent.
    pub update: CarrierUpdate,
    /// When the shop recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Whether it moved the delivery's status. A late update (older than the one that set
    /// the current status) and a repeated scan (the same status again) are kept in the
    /// history without moving it.
    pub applied: bool,
}

/// What recording an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The status moved to the update's status.
    Applied,
    /// The update joined the history; the status stayed (a late update or a repeat).
    Kept,
    /// The same update was recorded before: nothing changed.
    Duplicate,
}
