//! The scheduling rule: which day a delivery goes out.
//!
//! Deliveries go out on business days, never on the day the order is placed. A business
//! day is Monday to Friday and not a closed day of the shop's [`DeliveryCalendar`] (public
//! holidays, stock-taking, ...). All dates are UTC calendar dates. How many deliveries a day
//! takes is the stores' business (`DeliveryStore::insert_within_capacity`): the workflow
//! books the first day with room, moving on with [`DeliveryCalendar::next_business_day`].

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};

use crate::error::DeliveryError;

/// The days deliveries go out: Monday to Friday, except the closed days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCalendar {
    closed: BTreeSet<NaiveDate>,
}

impl DeliveryCalendar {
    /// A calendar closed on each of `closed` days (as well as every weekend).
    pub fn with_closed_days(closed: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            closed: closed.into_iter().collect(),
        }
    }

    /// The closed days, in date order.
    pub fn closed_days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.closed.iter().copied()
    }

    /// Whether deliveries go out on `date`.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.closed.contains(&date)
    }

    /// The delivery date for a customer's `requested` date, given `today` (UTC): the first
    /// business day on or after the later of `requested` and tomorrow. So no request, a
    /// request for today or tomorrow, or a request for a weekend or a closed day all move
    /// forward to the next possible business day, and a requested business day in the
    /// future is kept as it is.
    ///
    /// A `requested` date before `today` is [`DeliveryError::DateInPast`]. Past the last day
    /// chrono can represent (in the year 262142) there is no later day at all; that case is
    /// reported as [`DeliveryError::Unavailable`] rather than a panic.
    pub fn schedule_date(
        &self,
        requested: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<NaiveDate, DeliveryError> {
        if let Some(requested) = requested
            && requested < today
        {
            return Err(DeliveryError::DateInPast { requested, today });
        }
        let tomorrow = today.succ_opt().ok_or_else(|| calendar_exhausted(today))?;
        let earliest = requested.map_or(tomorrow, |requested| requested.max(tomorrow));
        self.first_business_day_on_or_after(earliest)
            .ok_or_else(|| calendar_exhausted(today))
    }

    /// The first business day after `day`: where a delivery goes when `day` is full.
    pub fn next_business_day(&self, day: NaiveDate) -> Result<NaiveDate, DeliveryError> {
        day.succ_opt()
            .and_then(|next| self.first_business_day_on_or_after(next))
            .ok_or_else(|| calendar_exhausted(day))
    }

    /// `date` itself if it is a business day, otherwise the next one; `None` only past the
    /// end of chrono's calendar.
    fn first_business_day_on_or_after(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut day = date;
        while !self.is_business_day(day) {
            day = day.succ_opt()?;
        }
        Some(day)
    }
}

/// The delivery date for a customer's `requested` date, given `today` (UTC), when the
/// shop is open every weekday: [`DeliveryCalendar::schedule_date`] of the default calendar.
pub fn schedule_date(
    requested: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate, DeliveryError> {
    DeliveryCalendar::default().schedule_date(requested, today)
}

fn calendar_exhausted(today: NaiveDate) -> DeliveryError {
    DeliveryError::Unavailable(Box::new(CalendarExhausted { today }))
}

/// Whether `date` is a weekday (the default calendar's business days).
#[cfg(test)]
fn is_business_day(date: NaiveDate) -> bool {
    DeliveryCalendar::default().is_business_day(date)
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
    fn a_closed_day_moves_a_delivery_to_the_next_open_business_day() {
        // Christmas 2026 is a Friday; the 28th a Monday.
        let calendar = DeliveryCalendar::with_closed_days([date("2026-12-25"), date("2026-12-28")]);
        assert_eq!(
            calendar.schedule_date(None, date("2026-12-24")).unwrap(),
            date("2026-12-29")
        );
        assert_eq!(
            calendar
                .schedule_date(Some(date("2026-12-25")), date("2026-12-01"))
                .unwrap(),
            date("2026-12-29")
        );
        assert_eq!(
            calendar.next_business_day(date("2026-12-24")).unwrap(),
            date("2026-12-29")
        );
        assert_eq!(
            calendar.closed_days().collect::<Vec<_>>(),
            vec![date("2026-12-25"), date("2026-12-28")]
        );
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
        fn closed_days_are_skipped_like_weekends_and_no_open_day_is_passed_over(
            today in any_date(),
            days_ahead in prop::option::of(0u64..60),
            closed_offsets in prop::collection::btree_set(0u64..60, 0..30),
        ) {
            let calendar = DeliveryCalendar::with_closed_days(
                closed_offsets.iter().map(|days| today + Days::new(*days)),
            );
            let requested = days_ahead.map(|days| today + Days::new(days));
            let scheduled = calendar.schedule_date(requested, today).unwrap();
            prop_assert!(calendar.is_business_day(scheduled));
            prop_assert!(!closed_offsets.contains(&(scheduled - today).num_days().unsigned_abs()));
            prop_assert!(scheduled > today);
            let earliest_allowed = requested.unwrap_or(today).max(today + Days::new(1));
            let mut earlier = earliest_allowed;
            while earlier < scheduled {
                prop_assert!(!calendar.is_business_day(earlier), "{earlier} beats {scheduled}");
                earlier = earlier + Days::new(1);
            }
            let next = calendar.next_business_day(scheduled).unwrap();
            prop_assert!(next > scheduled && calendar.is_business_day(next));
            let mut between = scheduled + Days::new(1);
            while between < next {
                prop_assert!(!calendar.is_business_day(between));
                between = between + Days::new(1);
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
