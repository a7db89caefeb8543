//! Identity of clients and operators: UserSig (TLSSigAPIv2) make and verify, PrivateMapKey
//! (userbuf) encode and parse, short-lived TURN credentials, and generation of application and
//! API keys. Pure functions: time is passed in, nothing here does IO.

mod keys;
mod private_map_key;
mod privileges;
mod sig_doc;
mod turn;
mod url_base64;
mod usersig;

pub use keys::{
    generate_sdk_app_id, generate_secret_id, generate_secret_key, generate_usersig_key,
};
pub use private_map_key::{make_private_map_key, PrivateMapKey, PrivateMapKeyError};
pub use privileges::Privileges;
pub use turn::{turn_credential, turn_password, TurnCredential};
pub use usersig::{
    make_usersig, peek_usersig, verify_usersig, UserSigError, UserSigParams, VerifiedUserSig,
    DEFAULT_USERSIG_EXPIRE_SECS,
};
