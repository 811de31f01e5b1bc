//! The scheduling rule: which day a delivery goes out.
//!
//! Deliveries go out on business days, Monday to Friday, and never on the day the order is
//! placed. Public holidays are not modelled. All dates are UTC calendar dates.

use chrono::{Datelike, NaiveDate, Weekday};

use crate::error::DeliveryError;

/// The delivery date for a customer's `requested` date, given `today` (UTC).
///
/// The result is the first business day (Monday to Friday) on or after the later of
/// `requested` and tomorrow. So no request, a request for today or tomorrow, or a request
/// for a weekend all move forward to the next possible business day, and a requested
/// business day in the future is kept as it is.
///
/// A `requested` date before `today` is [`DeliveryError::DateInPast`]. On the last day
/// chrono can represent (in the year 262142) there is no later day at all; that case is
/// reported as [`DeliveryError::Unavailable`] rather than a panic.
pub fn schedule_date(
    requested: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate, DeliveryError> {
    if let Some(requested) = requested
        && requested < today
    {
        return Err(DeliveryError::DateInPast { requested, today });
    }
    let calendar_exhausted = || DeliveryError::Unavailable(Box::new(CalendarExhausted { today }));
    let tomorrow = today.succ_opt().ok_or_else(calendar_exhausted)?;
    let earliest = requested.map_or(tomorrow, |requested| requested.max(tomorrow));
    first_business_day_on_or_after(earliest).ok_or_else(calendar_exhausted)
}

/// Whether deliveries go out on `date`.
fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// `date` itself if it is a business day, otherwise the Monday after it; `None` only past
/// the end of chrono's calendar.
fn first_business_day_on_or_after(date: NaiveDate) -> Option<NaiveDate> {
    let mut day = date;
    while !is_business_day(day) {
        day = day.succ_opt()?;
    }
    Some(day)
}

/// The calendar that chrono supports has no day after `today`.
#[derive(Debug, thiserror::Error)]
#[error("the calendar has no business day after {today}")]
struct CalendarExhausted {
    today: NaiveDate,
}

#[cfg(test)]
mod tests {
    use chrono::Days;
    use proptest::prelude::*;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_known_dates_in_these_tests_fall_on_the_expected_weekdays() {
        assert_eq!(date("2026-11-26").weekday(), Weekday::Thu);
        assert_eq!(date("2026-11-28").weekday(), Weekday::Sat);
        assert_eq!(date("2026-11-30").weekday(), Weekday::Mon);
        assert_eq!(NaiveDate::MAX.weekday(), Weekday::Mon);
    }

    #[test]
    fn deliveries_go_out_on_the_first_business_day_after_today_that_the_customer_accepts() {
        // (what happens, today, requested, scheduled)
        let cases = [
            (
                "thursday, no request: friday",
                "2026-11-26",
                None,
                "2026-11-27",
            ),
            (
                "requested today: next business day",
                "2026-11-26",
                Some("2026-11-26"),
                "2026-11-27",
            ),
            (
                "requested tomorrow, a friday: kept",
                "2026-11-26",
                Some("2026-11-27"),
                "2026-11-27",
            ),
            (
                "requested saturday: monday",
                "2026-11-26",
                Some("2026-11-28"),
                "2026-11-30",
            ),
            (
                "requested sunday: monday",
                "2026-11-26",
                Some("2026-11-29"),
                "2026-11-30",
            ),
            (
                "requested monday: kept",
                "2026-11-26",
                Some("2026-11-30"),
                "2026-11-30",
            ),
            (
                "friday, no request: monday",
                "2026-11-27",
                None,
                "2026-11-30",
            ),
            (
                "friday, requested friday: monday",
                "2026-11-27",
                Some("2026-11-27"),
                "2026-11-30",
            ),
            (
                "saturday, no request: monday",
                "2026-11-28",
                None,
                "2026-11-30",
            ),
            (
                "sunday, no request: monday",
                "2026-11-29",
                None,
                "2026-11-30",
            ),
            (
                "new year's eve, thursday: friday next year",
                "2026-12-31",
                None,
                "2027-01-01",
            ),
            (
                "far future wednesday: kept",
                "2026-11-26",
                Some("2030-06-12"),
                "2030-06-12",
            ),
            (
                "last representable day, a monday: kept",
                "2026-11-26",
                Some("+262142-12-31"),
                "+262142-12-31",
            ),
        ];
        for (what, today, requested, expected) in cases {
            let scheduled = schedule_date(requested.map(date), date(today)).unwrap();
            assert_eq!(scheduled, date(expected), "{what}");
        }
    }

    #[test]
    fn a_requested_date_before_today_is_rejected() {
        let today = date("2026-11-26");
        for requested in ["2026-11-25", "2026-11-01", "1999-12-31"] {
            let error = schedule_date(Some(date(requested)), today).unwrap_err();
            let DeliveryError::DateInPast {
                requested: reported_requested,
                today: reported_today,
            } = error
            else {
                panic!("{requested}: expected DateInPast, got {error:?}");
            };
            assert_eq!(
                (reported_requested, reported_today),
                (date(requested), today)
            );
        }
    }

    #[test]
    fn the_last_representable_day_has_no_delivery_date_and_does_not_panic() {
        let error = schedule_date(None, NaiveDate::MAX).unwrap_err();
        assert!(matches!(error, DeliveryError::Unavailable(_)), "{error:?}");
    }

    /// Any date from 1900 to about 2173.
    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (0u64..100_000).prop_map(|offset| date("1900-01-01") + Days::new(offset))
    }

    proptest! {
        #[test]
        fn the_scheduled_date_is_the_earliest_business_day_after_today_and_not_before_the_request(
            today in any_date(),
            days_ahead in prop::option::of(0u64..1_000),
        ) {
            let requested = days_ahead.map(|days| today + Days::new(days));
            let scheduled = schedule_date(requested, today).unwrap();
            prop_assert!(is_business_day(scheduled));
            prop_assert!(scheduled > today);
            if let Some(requested) = requested {
                prop_assert!(scheduled >= requested);
            }
            let earliest_allowed = requested.unwrap_or(today).max(today + Days::new(1));
            let mut earlier = earliest_allowed;
            while earlier < scheduled {
                prop_assert!(!is_business_day(earlier), "{earlier} beats {scheduled}");
                earlier = earlier + Days::new(1);
            }
        }

        #[test]
        fn any_date_before_today_is_in_the_past(today in any_date(), days_before in 1u64..1_000) {
            let requested = today - Days::new(days_before);
            let is_date_in_past = matches!(
                schedule_date(Some(requested), today),
                Err(DeliveryError::DateInPast { .. })
            );
            prop_assert!(is_date_in_past);
        }
    }
}
