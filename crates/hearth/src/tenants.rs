//! Who the server serves: applications and API credentials from the config, or, with none
//! configured, the ones generated on first start and kept in the store.

use crate::config::{mask, Config};
use anyhow::Result;
use hearth_auth::{
    generate_sdk_app_id, generate_secret_id, generate_secret_key, generate_usersig_key,
};
use hearth_store::{AppRecord, CredentialRecord, Store};
use hearth_types::{SdkAppId, UnixSecs};

pub struct Provisioned {
    pub apps: Vec<AppRecord>,
    pub credentials: Vec<CredentialRecord>,
    /// True when the tenants came from the data dir (generated now or earlier), not the config.
    pub from_data_dir: bool,
}

/// Configured tenants win and are written to the store; otherwise stored ones are reused;
/// otherwise one application and one credential are generated and stored.
pub fn provision(config: &Config, store: &dyn Store) -> Result<Provisioned> {
    let now = UnixSecs::now();
    if !config.apps.is_empty() {
        let apps: Vec<AppRecord> = config
            .apps
            .iter()
            .map(|a| AppRecord {
                sdk_app_id: SdkAppId(a.sdk_app_id),
                secret_key: a.secret_key.clone(),
                admins: a.admins.clone(),
                created_at: now,
            })
            .collect();
        let credentials: Vec<CredentialRecord> = config
            .credentials
            .iter()
            .map(|c| CredentialRecord {
                secret_id: c.secret_id.clone(),
                secret_key: c.secret_key.clone(),
                apps: c.apps.iter().copied().map(SdkAppId).collect(),
                created_at: now,
            })
            .collect();
        for a in &apps {
            store.upsert_app(a)?;
        }
        for c in &credentials {
            store.upsert_credential(c)?;
        }
        return Ok(Provisioned {
            apps,
            credentials,
            from_data_dir: false,
        });
    }
    let mut apps = store.apps()?;
    if apps.is_empty() {
        let app = AppRecord {
            sdk_app_id: generate_sdk_app_id(),
            secret_key: generate_usersig_key(),
            admins: vec!["administrator".into()],
            created_at: now,
        };
        store.upsert_app(&app)?;
        tracing::info!(sdk_app_id = app.sdk_app_id.0, "generated an application");
        apps.push(app);
    }
    let mut credentials = store.credentials()?;
    if credentials.is_empty() {
        let cred = CredentialRecord {
            secret_id: generate_secret_id(),
            secret_key: generate_secret_key(),
            apps: apps.iter().map(|a| a.sdk_app_id).collect(),
            created_at: now,
        };
        store.upsert_credential(&cred)?;
        tracing::info!(secret_id = %cred.secret_id, "generated an API credential");
        credentials.push(cred);
    }
    Ok(Provisioned {
        apps,
        credentials,
        from_data_dir: true,
    })
}

/// What an operator needs to start: printed in full for the zero-config setup, masked otherwise.
pub fn announce(p: &Provisioned) {
    if p.from_data_dir {
        println!("Hearth development tenants (kept in the data dir; set [[apps]] and [[credentials]] in a config file for production):");
        for a in &p.apps {
            println!(
                "  application  SdkAppId={}  UserSig key={}",
                a.sdk_app_id, a.secret_key
            );
        }
        for c in &p.credentials {
            println!(
                "  API key      SecretId={}  SecretKey={}",
                c.secret_id, c.secret_key
            );
        }
    } else {
        for a in &p.apps {
            tracing::info!(sdk_app_id = a.sdk_app_id.0, key = %mask(&a.secret_key), "application");
        }
        for c in &p.credentials {
            let apps: Vec<u32> = c.apps.iter().map(|a| a.0).collect();
            tracing::info!(secret_id = %c.secret_id, key = %mask(&c.secret_key), ?apps, "API credential");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_store::SqliteStore;

    #[test]
    fn generates_once_and_reuses_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        let first = provision(&Config::default(), &SqliteStore::open(&path).unwrap()).unwrap();
        assert!(first.from_data_dir);
        assert_eq!((first.apps.len(), first.credentials.len()), (1, 1));
        assert_eq!(first.credentials[0].apps, vec![first.apps[0].sdk_app_id]);
        let second = provision(&Config::default(), &SqliteStore::open(&path).unwrap()).unwrap();
        assert_eq!(second.apps, first.apps);
        assert_eq!(second.credentials, first.credentials);
    }
}
