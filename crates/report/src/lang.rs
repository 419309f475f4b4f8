//! Report labels in English and Japanese (`--lang`), shared by the HTML report.

/// Language of the labels a view prints.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    /// `ja…` (as in `LANG=ja_JP.UTF-8`) is Japanese; anything else is English.
    pub fn from_locale(s: &str) -> Lang {
        if s.trim().to_ascii_lowercase().starts_with("ja") {
            Lang::Ja
        } else {
            Lang::En
        }
    }

    /// The `lang` attribute value.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn labels(&self) -> &'static Labels {
        match self {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }
}

/// Every fixed string of the HTML report.
pub struct Labels {
    pub title: &'static str,
    pub verdict: &'static str,
    pub verdict_critical: &'static str,
    pub verdict_high: &'static str,
    pub verdict_other: &'static str,
    pub verdict_none: &'static str,
    pub exposure: &'static str,
    pub no_exposure: &'static str,
    pub completed_orders: &'static str,
    pub customer_ips: &'static str,
    pub exposure_per_day: &'static str,
    pub date: &'static str,
    pub exposure_counting: &'static str,
    pub exposure_limits: &'static str,
    pub input_span: &'static str,
    pub generated: &'static str,
    pub inputs: &'static str,
    pub path: &'static str,
    pub format: &'static str,
    pub lines: &'static str,
    pub skipped: &'static str,
    pub chart: &'static str,
    pub chart_caption: &'static str,
    pub chart_empty: &'static str,
    pub findings: &'static str,
    pub no_findings: &'static str,
    pub subjects: &'static str,
    pub ips: &'static str,
    pub users: &'static str,
    pub paths: &'static str,
    pub span: &'static str,
    pub events: &'static str,
    pub evidence: &'static str,
    pub playbook: &'static str,
    pub related: &'static str,
    pub per_ip: &'static str,
    pub per_ip_none: &'static str,
    pub ip: &'static str,
    pub first_seen: &'static str,
    pub last_seen: &'static str,
    pub requests: &'static str,
    pub what_they_did: &'static str,
    pub per_ip_note: &'static str,
    pub data_quality: &'static str,
    pub damaged: &'static str,
    pub not_read: &'static str,
    pub warnings: &'static str,
    pub skipped_reasons: &'static str,
    pub caveats: &'static str,
    pub nothing_to_report: &'static str,
    pub severity_names: [&'static str; 5],
}

impl Labels {
    /// Name of a severity, indexed `Info..Critical`.
    pub fn severity(&self, s: ecir_model::Severity) -> &'static str {
        self.severity_names[s as usize]
    }
}

pub static EN: Labels = Labels {
    title: "Incident report",
    verdict: "Verdict",
    verdict_critical:
        "Critical findings: treat the shop as compromised and start the response now.",
    verdict_high: "High findings: signs of compromise that need a responder's review today.",
    verdict_other: "Only medium or lower findings: probes and attempts; review them.",
    verdict_none: "No findings in these logs.",
    exposure: "Exposure window",
    no_exposure: "No exposure window established from these logs.",
    completed_orders: "completed orders",
    customer_ips: "customer IPs",
    exposure_per_day: "Exposure window by day",
    date: "Date",
    exposure_counting: "How orders were counted",
    exposure_limits: "Limits of the count",
    input_span: "Logs cover",
    generated: "Generated",
    inputs: "Inputs",
    path: "File",
    format: "Format",
    lines: "Lines",
    skipped: "Skipped",
    chart: "Activity per hour",
    chart_caption:
        "Events per hour per source; marks show when findings start, coloured by severity.",
    chart_empty: "No timestamped events to chart.",
    findings: "Findings",
    no_findings: "No findings.",
    subjects: "Subjects",
    ips: "IPs",
    users: "Users",
    paths: "Paths",
    span: "Time span",
    events: "Events",
    evidence: "Evidence",
    playbook: "Playbook",
    related: "Related",
    per_ip: "IPs behind high findings",
    per_ip_none: "No high or critical finding names a client IP.",
    ip: "IP",
    first_seen: "First seen",
    last_seen: "Last seen",
    requests: "Requests",
    what_they_did: "What they did",
    per_ip_note:
        "First and last seen, and requests, are counted over all analysed events of the IP.",
    data_quality: "Data quality",
    damaged: "Damaged or unreadable",
    not_read: "Not read (the run is incomplete)",
    warnings: "Warnings",
    skipped_reasons: "Skipped lines by reason",
    caveats: "What these logs cannot show",
    nothing_to_report: "Every line was read; nothing to report.",
    severity_names: ["Info", "Low", "Medium", "High", "Critical"],
};

pub static JA: Labels = Labels {
    title: "インシデント報告書",
    verdict: "判定",
    verdict_critical: "重大な検出があります。侵害されたものとして直ちに対応を開始してください。",
    verdict_high: "侵害の兆候（高）があります。本日中に担当者が確認してください。",
    verdict_other: "中以下の検出のみです（探索・攻撃の試行）。内容を確認してください。",
    verdict_none: "これらのログからは検出はありません。",
    exposure: "漏えいの可能性がある期間",
    no_exposure: "これらのログからは漏えい期間を特定できませんでした。",
    completed_orders: "件の完了した注文",
    customer_ips: "件の顧客IP",
    exposure_per_day: "漏えいの可能性がある期間（日別）",
    date: "日付",
    exposure_counting: "注文の数え方",
    exposure_limits: "件数の限界",
    input_span: "ログの期間",
    generated: "作成日時",
    inputs: "入力ファイル",
    path: "ファイル",
    format: "形式",
    lines: "行数",
    skipped: "読み飛ばし",
    chart: "時間ごとのアクセス",
    chart_caption: "ソース別の1時間あたりのイベント数。印は検出の開始時刻（色は重大度）。",
    chart_empty: "グラフにできる時刻付きのイベントがありません。",
    findings: "検出",
    no_findings: "検出はありません。",
    subjects: "対象",
    ips: "IP",
    users: "ユーザー",
    paths: "パス",
    span: "期間",
    events: "イベント数",
    evidence: "証拠となるログ行",
    playbook: "対応手順",
    related: "関連",
    per_ip: "重大度の高い検出に関わるIP",
    per_ip_none: "高・重大の検出にクライアントIPはありません。",
    ip: "IP",
    first_seen: "初回",
    last_seen: "最終",
    requests: "リクエスト数",
    what_they_did: "行ったこと",
    per_ip_note: "初回・最終・リクエスト数は、そのIPの分析対象イベント全体から数えています。",
    data_quality: "データの品質",
    damaged: "破損・読み取り不能",
    not_read: "読めなかったパス（この実行は不完全です）",
    warnings: "警告",
    skipped_reasons: "読み飛ばした行（理由別）",
    caveats: "これらのログでは分からないこと",
    nothing_to_report: "すべての行を読み取りました。特記事項はありません。",
    severity_names: ["情報", "低", "中", "高", "重大"],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_picks_language() {
        assert_eq!(Lang::from_locale("ja_JP.UTF-8"), Lang::Ja);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale(""), Lang::En);
        assert_eq!(Lang::Ja.labels().severity(ecir_model::Severity::High), "高");
    }
}
