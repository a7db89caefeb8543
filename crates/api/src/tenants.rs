//! Who may call: the API credentials and the applications they act on, as loaded at start.

use crate::error::ApiError;
use hearth_store::{AppRecord, CredentialRecord};
use hearth_types::SdkAppId;
use std::collections::HashMap;

/// A snapshot of applications and credentials, indexed for lookups on every request.
#[derive(Default)]
pub struct Tenants {
    apps: HashMap<SdkAppId, AppRecord>,
    credentials: HashMap<String, CredentialRecord>,
    /// TC3 signing keys derived from these credentials.
    pub signing_keys: crate::signature::tc3::SigningKeys,
}

impl Tenants {
    pub fn new(apps: Vec<AppRecord>, credentials: Vec<CredentialRecord>) -> Self {
        Tenants {
            apps: apps.into_iter().map(|a| (a.sdk_app_id, a)).collect(),
            credentials: credentials
                .into_iter()
                .map(|c| (c.secret_id.clone(), c))
                .collect(),
            signing_keys: Default::default(),
        }
    }

    pub fn credential(&self, secret_id: &str) -> Option<&CredentialRecord> {
        self.credentials.get(secret_id)
    }

    pub fn app(&self, id: SdkAppId) -> Option<&AppRecord> {
        self.apps.get(&id)
    }
}

/// The authenticated caller of one request.
#[derive(Clone)]
pub struct Caller {
    pub secret_id: String,
    pub apps: Vec<SdkAppId>,
}

impl Caller {
    /// `UnauthorizedOperation.SdkAppId` unless this credential was given `app`.
    pub fn check_app(&self, app: SdkAppId) -> Result<(), ApiError> {
        if self.apps.contains(&app) {
            Ok(())
        } else {
            Err(ApiError::UnauthorizedSdkAppId(app.0))
        }
    }
}
