//! Payments: the token a client pays with, the processor that takes the money, and what
//! an order remembers of it.

use std::fmt;

use bookstore_types::{Money, OrderId};

bookstore_types::uuid_id! {
    /// The processor's id for one captured payment.
    pub struct TransactionId;
}

/// A payment token as sent by a client, e.g. `tok_visa`.
///
/// The token is a secret: its `Debug` and `Display` print `PaymentToken(<redacted>)`, never
/// the value, so it cannot end up in a log by accident. Only [`PaymentToken::expose_secret`]
/// reveals it, for handing to a processor. [`PaymentToken::parse`] refuses anything that
/// looks like a raw card number, so card numbers never travel further than the parser.
#[derive(Clone)]
pub struct PaymentToken(String);

impl PaymentToken {
    /// The longest token accepted, in characters.
    const MAX_CHARS: usize = 255;
    /// A card number has this many digits once spaces and hyphens are removed.
    const CARD_NUMBER_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;
    /// A token containing this many digits in a row is taken to be hiding a card number.
    const CARD_NUMBER_RUN: usize = 12;

    /// Checks that `token` can be sent to a processor.
    ///
    /// - empty (or only whitespace) → [`PaymentError::InvalidToken`];
    /// - looks like a card number → [`PaymentError::CardNumberNotAccepted`]: 13 to 19 digits
    ///   once spaces and hyphens are removed, or anywhere a run of 12 or more digits (single
    ///   spaces or hyphens between digits do not break a run);
    /// - longer than 255 characters → [`PaymentError::InvalidToken`].
    ///
    /// Tokens are case-sensitive and are kept exactly as given.
    pub fn parse(token: impl Into<String>) -> Result<Self, PaymentError> {
        let token = token.into();
        if token.trim().is_empty() {
            return Err(PaymentError::InvalidToken);
        }
        if looks_like_a_card_number(&token) {
            return Err(PaymentError::CardNumberNotAccepted);
        }
        if token.chars().count() > Self::MAX_CHARS {
            return Err(PaymentError::InvalidToken);
        }
        Ok(Self(token))
    }

    /// The token itself. Pass it to a processor; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

/// Whether `text` is, or contains, something shaped like a payment card number.
fn looks_like_a_card_number(text: &str) -> bool {
    let without_separators: Vec<u8> = text
        .bytes()
        .filter(|byte| !matches!(byte, b' ' | b'-'))
        .collect();
    let is_only_digits = without_separators.iter().all(u8::is_ascii_digit);
    if is_only_digits && PaymentToken::CARD_NUMBER_DIGITS.contains(&without_separators.len()) {
        return true;
    }
    longest_digit_run(text) >= PaymentToken::CARD_NUMBER_RUN
}

/// The most digits found in a row in `text`, where one space or hyphen between two digits
/// does not break the row (`4242 4242-4242` is a run of twelve).
fn longest_digit_run(text: &str) -> usize {
    let mut longest = 0;
    let mut digits_in_run = 0;
    let mut previous_was_separator = false;
    for byte in text.bytes() {
        if byte.is_ascii_digit() {
            digits_in_run += 1;
            previous_was_separator = false;
            longest = longest.max(digits_in_run);
        } else if matches!(byte, b' ' | b'-') && digits_in_run > 0 && !previous_was_separator {
            previous_was_separator = true;
        } else {
            digits_in_run = 0;
            previous_was_separator = false;
        }
    }
    longest
}

impl fmt::Debug for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentToken(<redacted>)")
    }
}

impl fmt::Display for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentToken(<redacted>)")
    }
}

/// Why a payment could not be taken or refunded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PaymentError {
    /// The processor refused the payment (e.g. insufficient funds).
    #[error("the payment was declined")]
    Declined,
    /// The token is empty, too long, or unknown to the processor.
    #[error("the payment token is not valid")]
    InvalidToken,
    /// The client sent something that looks like a card number instead of a token.
    #[error("raw card numbers are not accepted; send a payment token")]
    CardNumberNotAccepted,
    /// The processor has no transaction with this id.
    #[error("payment transaction {transaction_id} was not found")]
    UnknownTransaction {
        /// The id that was asked about.
        transaction_id: TransactionId,
    },
    /// The transaction was refunded before; it cannot be refunded twice.
    #[error("payment transaction {transaction_id} is already refunded")]
    AlreadyRefunded {
        /// The transaction that was already refunded.
        transaction_id: TransactionId,
    },
    /// The processor could not be reached; the text says why.
    #[error("the payment processor is unavailable: {0}")]
    Unavailable(String),
}

/// Where a payment stands with the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// The money was taken.
    Captured,
    /// The money was given back in full.
    Refunded,
}

impl PaymentStatus {
    /// `"captured"` or `"refunded"`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Captured => "captured",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an order remembers of the payment that paid for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The processor's id for the payment.
    pub transaction_id: TransactionId,
    /// Whether the money is held or was given back.
    pub status: PaymentStatus,
}

/// A payment whose money is held: the only kind that can pay for a confirmed order
/// ([`Order::confirmed`](crate::Order::confirmed)).
///
/// Obtained from a [`Payment`] whose status is [`PaymentStatus::Captured`] (`try_from`, which
/// gives any other payment back unchanged), or from the transaction id that
/// [`PaymentGateway::capture`] has just answered ([`CapturedPayment::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturedPayment {
    transaction_id: TransactionId,
}

impl CapturedPayment {
    /// The payment [`PaymentGateway::capture`] made: pass only the transaction id a capture
    /// answered with `Ok`.
    pub fn new(transaction_id: TransactionId) -> Self {
        Self { transaction_id }
    }

    /// The processor's id for the payment.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }
}

impl TryFrom<Payment> for CapturedPayment {
    type Error = Payment;

    /// The payment, if it is captured; otherwise the payment back.
    fn try_from(payment: Payment) -> Result<Self, Payment> {
        match payment.status {
            PaymentStatus::Captured => Ok(Self::new(payment.transaction_id)),
            PaymentStatus::Refunded => Err(payment),
        }
    }
}

impl From<CapturedPayment> for Payment {
    fn from(captured: CapturedPayment) -> Payment {
        Payment {
            transaction_id: captured.transaction_id,
            status: PaymentStatus::Captured,
        }
    }
}

/// What a processor remembers of the capture made for one reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// The processor's id for the payment.
    pub transaction_id: TransactionId,
    /// The amount taken.
    pub amount: Money,
    /// Whether the money is held or was given back.
    pub status: PaymentStatus,
}

/// A payment processor: takes money with a token and gives it back.
///
/// Captures are idempotent per reference (the order being paid for), as real processors'
/// idempotency keys are: whatever happens to the caller, one order is charged at most once,
/// and [`capture_for`](PaymentGateway::capture_for) tells afterwards whether it was.
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Captures `amount` with `token` for the order `reference` and returns the new
    /// transaction's id.
    ///
    /// At most one capture exists per reference: if `reference` was captured before, the
    /// first transaction's id is returned and nothing is charged (the token and amount are
    /// not looked at again, and the transaction may since have been refunded). A declined or
    /// failed capture leaves nothing behind, so it may be retried.
    ///
    /// Fails with [`PaymentError::Declined`], [`PaymentError::InvalidToken`] or
    /// [`PaymentError::Unavailable`].
    async fn capture(
        &self,
        token: &PaymentToken,
        amount: Money,
        reference: OrderId,
    ) -> Result<TransactionId, PaymentError>;

    /// The capture made for `reference`, if any, with its current status.
    ///
    /// Fails only with [`PaymentError::Unavailable`].
    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError>;

    /// Refunds a captured transaction in full.
    ///
    /// Fails with [`PaymentError::UnknownTransaction`], [`PaymentError::AlreadyRefunded`]
    /// or [`PaymentError::Unavailable`].
    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_tokens_are_checked_before_they_reach_a_processor() {
        let too_long = "t".repeat(256);
        let longest = "t".repeat(255);
        for (input, expected) in [
            ("tok_visa", Ok(())),
            ("tok_chargeDeclined", Ok(())),
            ("TOK_VISA", Ok(())),
            ("tok_12345678901", Ok(())),
            (longest.as_str(), Ok(())),
            ("", Err(PaymentError::InvalidToken)),
            ("   ", Err(PaymentError::InvalidToken)),
            (too_long.as_str(), Err(PaymentError::InvalidToken)),
            ("4242424242424242", Err(PaymentError::CardNumberNotAccepted)),
            (
                "4242 4242 4242 4242",
                Err(PaymentError::CardNumberNotAccepted),
            ),
            (
                "4242-4242-4242-4242",
                Err(PaymentError::CardNumberNotAccepted),
            ),
            (
                "4000 0566 5566 5556 123",
                Err(PaymentError::CardNumberNotAccepted),
            ),
            ("tok_424242424242", Err(PaymentError::CardNumberNotAccepted)),
            (
                "card 4242 4242 4242 4242",
                Err(PaymentError::CardNumberNotAccepted),
            ),
        ] {
            let parsed = PaymentToken::parse(input).map(|token| {
                assert_eq!(token.expose_secret(), input);
            });
            assert_eq!(parsed, expected, "input {input:?}");
        }
    }

    #[test]
    fn a_card_number_hidden_in_an_over_long_token_is_reported_as_a_card_number() {
        let input = format!("{}4242424242424242", "t".repeat(300));
        assert_eq!(
            PaymentToken::parse(input).unwrap_err(),
            PaymentError::CardNumberNotAccepted
        );
    }

    #[test]
    fn payment_tokens_never_print_their_value() {
        let token = PaymentToken::parse("tok_visa").unwrap();
        for printed in [
            format!("{token:?}"),
            format!("{token}"),
            format!("{token:#?}"),
        ] {
            assert_eq!(printed, "PaymentToken(<redacted>)");
            assert!(!printed.contains("tok_visa"));
        }
    }

    #[test]
    fn errors_about_tokens_never_include_the_token() {
        for input in [
            "",
            "4242424242424242",
            "tok_secret_but_too_long".repeat(20).as_str(),
        ] {
            let error = PaymentToken::parse(input).unwrap_err();
            let printed = format!("{error} {error:?}");
            assert!(input.is_empty() || !printed.contains(input), "{printed}");
        }
    }

    #[test]
    fn transaction_ids_render_as_lowercase_hyphenated_uuids() {
        let id: TransactionId = "67E55044-10B1-426F-9247-BB680E5FE0C8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(TransactionId::from_uuid(id.as_uuid()), id);
        assert_ne!(TransactionId::generate(), TransactionId::generate());
    }

    #[test]
    fn payment_statuses_have_lower_case_names() {
        assert_eq!(PaymentStatus::Captured.as_str(), "captured");
        assert_eq!(PaymentStatus::Refunded.to_string(), "refunded");
    }
}
