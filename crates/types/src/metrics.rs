//! The quality metrics of DescribeCallDetailInfo's `DataType`, as samples are named in the store.

/// Every metric, in the spec's order (`DataType=all`).
pub const QUALITY_METRICS: [&str; 13] = [
    "appCpu",
    "sysCpu",
    "aBit",
    "aBlock",
    "bigvBit",
    "bigvCapFps",
    "bigvEncFps",
    "bigvDecFps",
    "bigvBlock",
    "aLoss",
    "bigvLoss",
    "bigvWidth",
    "bigvHeight",
];
