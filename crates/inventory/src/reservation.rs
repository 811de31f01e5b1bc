//! The reservation journal's key, [`ReservationId`].
//!
//! Every [`reserve_all`](crate::CatalogueStore::reserve_all) is recorded under an id chosen by
//! the caller (the gateway uses the id of the order being placed), so that stock taken for a
//! request that never finished can be found and given back later.

bookstore_types::uuid_id! {
    /// The id under which one reservation is journaled until it is confirmed or cancelled.
    pub struct ReservationId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_ids_render_as_lowercase_hyphenated_uuids_and_round_trip() {
        let id: ReservationId = "67E55044-10B1-426F-9247-BB680E5FE0C8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(ReservationId::from_uuid(id.as_uuid()), id);
    }
}
