//! What the gateway serves: services, their versions, every action of the spec with its rate
//! limit (spec §2.1), whether Hearth has built it, and the actions the spec says were deleted.

/// A TencentCloud product served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Trtc,
    Lcic,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Trtc => "trtc",
            Service::Lcic => "lcic",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Service::Trtc => "2019-07-22",
            Service::Lcic => "2022-08-17",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "trtc" => Some(Service::Trtc),
            "lcic" => Some(Service::Lcic),
            _ => None,
        }
    }
}

/// How often one SecretId may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per_secs: u32,
}

impl RateLimit {
    const fn per_second(requests: u32) -> Self {
        RateLimit {
            requests,
            per_secs: 1,
        }
    }

    pub fn describe(self) -> String {
        if self.per_secs == 1 {
            format!("{} requests per second", self.requests)
        } else {
            format!("{} request(s) per {} seconds", self.requests, self.per_secs)
        }
    }
}

/// One action of the spec.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    pub service: Service,
    pub name: &'static str,
    pub limit: RateLimit,
    /// Built and answered by Hearth; the others answer `InvalidAction`.
    pub built: bool,
}

const fn a(service: Service, name: &'static str, limit: RateLimit, built: bool) -> Action {
    Action {
        service,
        name,
        limit,
        built,
    }
}

use Service::{Lcic, Trtc};
const R20: RateLimit = RateLimit::per_second(20);
const R5: RateLimit = RateLimit::per_second(5);

/// Every action of spec §2.1 and §6.1, in the spec's order.
pub const ACTIONS: &[Action] = &[
    a(Trtc, "RemoveUser", R20, true),
    a(Trtc, "RemoveUserByStrRoomId", R20, true),
    a(Trtc, "DismissRoom", R20, true),
    a(Trtc, "DismissRoomByStrRoomId", R20, true),
    a(Trtc, "SetUserBlocked", R20, true),
    a(Trtc, "SetUserBlockedByStrRoomId", R20, true),
    a(Trtc, "StartPublishCdnStream", R20, true),
    a(Trtc, "UpdatePublishCdnStream", R20, true),
    a(Trtc, "StopPublishCdnStream", R20, true),
    a(Trtc, "DescribeTRTCRealTimeScaleData", R20, true),
    a(Trtc, "DescribeTRTCRealTimeQualityData", R20, true),
    a(Trtc, "DescribeTRTCMarketScaleData", R20, true),
    a(Trtc, "DescribeTRTCMarketQualityData", R20, true),
    a(Trtc, "StartStreamIngest", R20, true),
    a(Trtc, "DescribeStreamIngest", R20, true),
    a(Trtc, "UpdateStreamIngest", R20, true),
    a(Trtc, "StopStreamIngest", R20, true),
    a(Trtc, "StartAIConversation", R20, true),
    a(Trtc, "DescribeAIConversation", R20, true),
    a(Trtc, "UpdateAIConversation", R20, true),
    a(Trtc, "ControlAIConversation", R20, true),
    a(Trtc, "StopAIConversation", R20, true),
    a(Trtc, "StartAITranscription", R20, true),
    a(Trtc, "DescribeAITranscription", R20, true),
    a(Trtc, "StopAITranscription", R20, true),
    a(Trtc, "DescribeRoomInfo", R20, true),
    a(Trtc, "DescribeUnusualEvent", R20, true),
    a(Trtc, "DescribeUserEvent", R20, true),
    a(Trtc, "DescribeCallDetailInfo", R20, true),
    a(Trtc, "DescribeUserInfo", R20, true),
    a(Trtc, "DescribeScaleInfo", R20, true),
    a(Trtc, "CreateCloudRecording", R20, true),
    a(Trtc, "DescribeCloudRecording", R20, true),
    a(Trtc, "ModifyCloudRecording", R20, true),
    a(Trtc, "DeleteCloudRecording", R20, true),
    a(Trtc, "DescribeTrtcUsage", R5, true),
    a(Trtc, "DescribeRecordingUsage", R5, true),
    a(Trtc, "DescribeMixTranscodingUsage", R5, true),
    a(Trtc, "DescribeRelayUsage", R5, true),
    a(
        Trtc,
        "DescribeTrtcRoomUsage",
        RateLimit {
            requests: 1,
            per_secs: 15,
        },
        true,
    ),
    a(Lcic, "GetRoomEvent", R20, true),
];

/// Actions the spec's history says were deleted (Releases 11 and 12): answered `ActionOffline`.
pub const DELETED: &[&str] = &[
    "CreatePicture",
    "CreateTroubleInfo",
    "DeletePicture",
    "DescribeAbnormalEvent",
    "DescribeDetailEvent",
    "DescribeHistoryScale",
    "DescribePicture",
    "DescribeRecordStatistic",
    "DescribeRoomInformation",
    "DescribeTrtcInteractiveTime",
    "DescribeTrtcMcuTranscodeTime",
    "DescribeUserInformation",
    "ModifyPicture",
    "StartMCUMixTranscode",
    "StartMCUMixTranscodeByStrRoomId",
    "StopMCUMixTranscode",
    "StopMCUMixTranscodeByStrRoomId",
    "DescribeRealtimeNetwork",
    "DescribeRealtimeQuality",
    "DescribeRealtimeScale",
];

/// Legacy actions still answered although the current API lists them no more: the spec
/// (§2.3.L1, §7 item 5) recommends accepting `DescribeCallDetail` (seed 001) with its
/// string-typed SdkAppId/PageNumber/PageSize and answering like `DescribeCallDetailInfo`.
pub const LEGACY: &[Action] = &[a(Trtc, "DescribeCallDetail", R20, true)];

/// The action `name` of `service`, if the spec has it (current or legacy).
pub fn find(service: Service, name: &str) -> Option<&'static Action> {
    ACTIONS
        .iter()
        .chain(LEGACY)
        .find(|a| a.service == service && a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_has_forty_trtc_actions_and_one_lcic_action() {
        assert_eq!(ACTIONS.iter().filter(|a| a.service == Trtc).count(), 40);
        assert_eq!(ACTIONS.iter().filter(|a| a.service == Lcic).count(), 1);
    }

    #[test]
    fn names_are_unique() {
        for (i, x) in ACTIONS.iter().enumerate() {
            assert!(
                ACTIONS[i + 1..].iter().all(|y| y.name != x.name),
                "{}",
                x.name
            );
            assert!(!DELETED.contains(&x.name), "{}", x.name);
        }
        for x in LEGACY {
            assert!(ACTIONS.iter().all(|y| y.name != x.name), "{}", x.name);
            assert!(!DELETED.contains(&x.name), "{}", x.name);
        }
    }
}
