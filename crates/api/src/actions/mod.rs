//! Action handlers, one module per action group of the spec, and the dispatch from an action
//! name to its handler. Each handler decodes its typed request, checks the caller's right to the
//! application, and returns the response fields.

mod ai;
mod ai_conversation;
mod calls;
mod dashboard;
mod ingest;
mod lcic;
mod moderation;
mod monitor;
mod record;
mod relay;
mod room;
mod unusual;
mod usage;

use crate::error::ApiError;
use crate::media::AiKind;
use crate::tenants::Caller;
use crate::ApiState;
use hearth_store::{Store, StoreError};
use hearth_types::{SdkAppId, UnixSecs};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What a handler may use.
pub struct Ctx {
    pub state: Arc<ApiState>,
    pub caller: Caller,
    pub now: UnixSecs,
}

impl Ctx {
    /// Runs a store query on a blocking thread.
    pub async fn store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.state.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| ApiError::Internal)?
            .map_err(ApiError::from)
    }

    pub fn check_app(&self, app: SdkAppId) -> Result<(), ApiError> {
        self.caller.check_app(app)
    }
}

/// Serializes an output struct into the response fields.
pub fn fields<T: Serialize>(out: &T) -> Result<Map<String, Value>, ApiError> {
    match serde_json::to_value(out) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::Internal),
    }
}

/// Runs the handler of a built action.
pub async fn dispatch(
    ctx: Ctx,
    action: &str,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    match action {
        "DismissRoom" => room::dismiss_room(&ctx, params).await,
        "RemoveUser" => moderation::remove_user(&ctx, params).await,
        "RemoveUserByStrRoomId" => moderation::remove_user_by_str(&ctx, params).await,
        "SetUserBlocked" => moderation::set_user_blocked(&ctx, params).await,
        "SetUserBlockedByStrRoomId" => moderation::set_user_blocked_by_str(&ctx, params).await,
        "DismissRoomByStrRoomId" => room::dismiss_room_by_str(&ctx, params).await,
        "DescribeRoomInfo" => monitor::describe_room_info(&ctx, params).await,
        "DescribeUserInfo" => monitor::describe_user_info(&ctx, params).await,
        "DescribeScaleInfo" => monitor::describe_scale_info(&ctx, params).await,
        "DescribeTRTCRealTimeScaleData" => {
            dashboard::describe_real_time_scale_data(&ctx, params).await
        }
        "DescribeTRTCMarketScaleData" => dashboard::describe_market_scale_data(&ctx, params).await,
        "DescribeTRTCRealTimeQualityData" => {
            dashboard::describe_real_time_quality_data(&ctx, params).await
        }
        "DescribeTRTCMarketQualityData" => {
            dashboard::describe_market_quality_data(&ctx, params).await
        }
        "DescribeUserEvent" => calls::describe_user_event(&ctx, params).await,
        "DescribeCallDetailInfo" => calls::describe_call_detail_info(&ctx, params).await,
        "DescribeCallDetail" => calls::describe_call_detail(&ctx, params).await,
        "GetRoomEvent" => lcic::get_room_event(&ctx, params).await,
        "DescribeUnusualEvent" => unusual::describe_unusual_event(&ctx, params).await,
        "StartPublishCdnStream" => relay::start_publish_cdn_stream(&ctx, params).await,
        "UpdatePublishCdnStream" => relay::update_publish_cdn_stream(&ctx, params).await,
        "StopPublishCdnStream" => relay::stop_publish_cdn_stream(&ctx, params).await,
        "StartStreamIngest" => ingest::start_stream_ingest(&ctx, params).await,
        "DescribeStreamIngest" => ingest::describe_stream_ingest(&ctx, params).await,
        "UpdateStreamIngest" => ingest::update_stream_ingest(&ctx, params).await,
        "StopStreamIngest" => ingest::stop_stream_ingest(&ctx, params).await,
        "CreateCloudRecording" => record::create_cloud_recording(&ctx, params).await,
        "DescribeCloudRecording" => record::describe_cloud_recording(&ctx, params).await,
        "ModifyCloudRecording" => record::modify_cloud_recording(&ctx, params).await,
        "DeleteCloudRecording" => record::delete_cloud_recording(&ctx, params).await,
        "DescribeMixTranscodingUsage" => usage::describe_mix_transcoding_usage(&ctx, params).await,
        "DescribeRelayUsage" => usage::describe_relay_usage(&ctx, params).await,
        "DescribeRecordingUsage" => usage::describe_recording_usage(&ctx, params).await,
        "DescribeTrtcUsage" => usage::describe_trtc_usage(&ctx, params).await,
        "StartAITranscription" => ai::start_ai_transcription(&ctx, params).await,
        "DescribeAITranscription" => ai::describe_ai(&ctx, AiKind::Transcription, params).await,
        "StopAITranscription" => ai::stop_ai(&ctx, AiKind::Transcription, params).await,
        "StartAIConversation" => ai_conversation::start_ai_conversation(&ctx, params).await,
        "DescribeAIConversation" => ai::describe_ai(&ctx, AiKind::Conversation, params).await,
        "StopAIConversation" => ai::stop_ai(&ctx, AiKind::Conversation, params).await,
        "UpdateAIConversation" => ai_conversation::update_ai_conversation(&ctx, params).await,
        "ControlAIConversation" => ai_conversation::control_ai_conversation(&ctx, params).await,
        "DescribeTrtcRoomUsage" => usage::describe_trtc_room_usage(&ctx, params).await,
        other => {
            // The catalog marks an action built only when it is listed here.
            tracing::error!(action = other, "catalog says built but no handler");
            Err(ApiError::InvalidAction(other.to_owned()))
        }
    }
}
