//! Identity of clients and operators: UserSig (TLSSigAPIv2) make and verify, PrivateMapKey
//! (userbuf) encode and parse, and generation of application and API keys. Pure functions:
//! time is passed in, nothing here does IO.
