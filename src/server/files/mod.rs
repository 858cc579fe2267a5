//! The storage side of receiving: an offer's admission (`admit`), the descriptors and memory
//! files in flight may take (`budget`), the group commit (`commit`), what a fetch lists from
//! a directory (`listing`) or an object store (`objects`), refusals (`refusal`), resumable
//! uploads (`resume`) and free space promised (`space`).

pub(super) mod admit;
pub(super) mod budget;
pub(super) mod commit;
pub(super) mod listing;
pub(super) mod objects;
pub(super) mod refusal;
pub(super) mod resume;
pub(super) mod space;
