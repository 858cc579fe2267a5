//! The object-store setters of [`ServerConfig`]: received files go to an S3-compatible bucket,
//! opened when the server starts, instead of into the directory.

use crate::server::config::ServerConfig;
use crate::storage::S3Config;

impl ServerConfig {
    /// Stores verified files in the S3 bucket `s3` names (opened, and checked with a HEAD of
    /// the bucket, when the server starts); the directory then spools their content. See
    /// [`ServerConfig::object_store`] for what holds against the bucket.
    pub fn s3(&mut self, s3: S3Config) -> &mut Self {
        self.s3 = Some(s3);
        self
    }

    /// The S3 settings given to [`ServerConfig::s3`], to adjust one at a time (the C setters).
    pub fn s3_config_mut(&mut self) -> Option<&mut S3Config> {
        self.s3.as_mut()
    }
}
