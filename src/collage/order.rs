//! Capture-time order and interval labels ("Day 12", "Month 6"), never dates.

/// Labels when none are given: Before / After, Before / During / After,
/// Before / During 1..k / After.
pub fn default_labels(n: usize) -> Vec<String> {
    let mut v: Vec<String> = match n {
        0 => return Vec::new(),
        1 => return vec!["Before".into()],
        2 => Vec::new(),
        3 => vec!["During".into()],
        _ => (1..=n - 2).map(|i| format!("During {i}")).collect(),
    };
    v.insert(0, "Before".into());
    v.push("After".into());
    v
}

/// Splits `--labels "Week 0,Week 12"`; each label is trimmed.
pub fn parse_labels(s: &str) -> Vec<String> {
    s.split(',').map(|l| l.trim().to_string()).collect()
}

/// A wall-clock time as a camera records it (no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// Parses EXIF's `YYYY:MM:DD HH:MM:SS` (`-` in the date and a missing
    /// time are accepted). Blank or impossible values ("0000:00:00") give `None`.
    pub fn parse_exif(s: &str) -> Option<DateTime> {
        let s = s.trim().trim_end_matches('\0');
        let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
        let num = |p: &str| p.trim().parse::<u32>().ok();
        let d: Vec<&str> = date.split([':', '-']).collect();
        let t: Vec<&str> = time.split(':').collect();
        if d.len() != 3 || t.len() < 2 {
            return None;
        }
        let dt = DateTime {
            year: num(d[0])? as i32,
            month: num(d[1])?,
            day: num(d[2])?,
            hour: num(t[0])?,
            minute: num(t[1])?,
            second: t.get(2).map_or(Some(0), |s| num(s.get(..2).unwrap_or(s)))?,
        };
        let valid = (1..=9999).contains(&dt.year)
            && dt.civil_date().is_some()
            && dt.hour < 24
            && dt.minute < 60
            && dt.second < 61;
        valid.then_some(dt)
    }

    /// The UTC date and time of `secs` since 1970-01-01 (jiff), clamped to
    /// the years -9999..=9999.
    pub fn from_unix(secs: i64) -> DateTime {
        const EPOCH: jiff::civil::DateTime = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        let d = EPOCH
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap_or(if secs < 0 {
                jiff::civil::DateTime::MIN
            } else {
                jiff::civil::DateTime::MAX
            });
        DateTime {
            year: d.year().into(),
            month: d.month() as u32,
            day: d.day() as u32,
            hour: d.hour() as u32,
            minute: d.minute() as u32,
            second: d.second() as u32,
        }
    }

    /// The calendar date, when it exists (jiff checks month lengths and leap years).
    fn civil_date(&self) -> Option<jiff::civil::Date> {
        let year = i16::try_from(self.year).ok()?;
        let month = i8::try_from(self.month).ok()?;
        let day = i8::try_from(self.day).ok()?;
        jiff::civil::Date::new(year, month, day).ok()
    }

    /// Days since 1970-01-01.
    fn day_number(&self) -> i64 {
        const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);
        self.civil_date()
            .and_then(|d| d.since(EPOCH).ok())
            .map_or(0, |span| span.get_days().into())
    }
}

/// The interval from `first` to `this`, as clinicians count it: "Day N"
/// (calendar days) within the first month, then "Month N", then "Year N"
/// or "Year N Month M". Whole months only count once the day of the month
/// (and time of day) is reached again. An earlier `this` reads "… before".
pub fn interval_label(first: DateTime, this: DateTime) -> String {
    if this < first {
        return format!("{} before", interval_label(this, first));
    }
    let mut months = (this.year - first.year) as i64 * 12 + this.month as i64 - first.month as i64;
    let clock = |d: &DateTime| (d.day, d.hour, d.minute, d.second);
    if clock(&this) < clock(&first) {
        months -= 1;
    }
    if months <= 0 {
        return format!("Day {}", this.day_number() - first.day_number());
    }
    let (years, months) = (months / 12, months % 12);
    match (years, months) {
        (0, m) => format!("Month {m}"),
        (y, 0) => format!("Year {y}"),
        (y, m) => format!("Year {y} Month {m}"),
    }
}

/// How a photo sorts within its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// EXIF DateTimeOriginal, else DateTimeDigitized (CreateDate).
    pub capture: Option<DateTime>,
    /// The file's modification time, when the EXIF has none.
    pub file_time: Option<DateTime>,
    /// The file name, the last tie-breaker.
    pub name: String,
}

impl SortKey {
    /// The time the photo sorts (and is labelled) by.
    pub fn time(&self) -> Option<DateTime> {
        self.capture.or(self.file_time)
    }
}

/// The chronological order of `keys`, as indices: by capture time, then
/// file time, then name; photos with no time at all come last.
pub fn chronological_order(keys: &[SortKey]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ka, kb) = (&keys[a], &keys[b]);
        (ka.time().is_none(), ka.time(), &ka.name).cmp(&(kb.time().is_none(), kb.time(), &kb.name))
    });
    idx
}

/// `items` (one per key) put in the chronological order of `keys`.
pub fn in_chronological_order<T>(items: Vec<T>, keys: &[SortKey]) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    chronological_order(keys)
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::parse_exif(s).unwrap()
    }

    fn label(a: &str, b: &str) -> String {
        interval_label(dt(a), dt(b))
    }

    #[test]
    fn exif_times_parse_and_reject_blanks() {
        let d = dt("2021:03:04 09:10:11");
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (2021, 3, 4, 9, 10, 11)
        );
        assert_eq!(dt("2021-03-04"), dt("2021:03:04 00:00:00"));
        for bad in [
            "0000:00:00 00:00:00",
            "    :  :     :  :  ",
            "",
            "2021:02:30 00:00:00",
            "2021:13:01 00:00:00",
        ] {
            assert_eq!(DateTime::parse_exif(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn intervals_in_days_months_and_years() {
        let t0 = "2021:03:04 09:10:11";
        assert_eq!(label(t0, t0), "Day 0");
        assert_eq!(label(t0, "2021:03:04 23:59:59"), "Day 0");
        assert_eq!(label(t0, "2021:03:05 08:00:00"), "Day 1");
        assert_eq!(label(t0, "2021:04:03 09:10:11"), "Day 30");
        assert_eq!(label(t0, "2021:04:04 09:10:10"), "Day 31");
        assert_eq!(label(t0, "2021:04:04 09:10:11"), "Month 1");
        assert_eq!(label(t0, "2021:09:10 10:20:30"), "Month 6");
        assert_eq!(label(t0, "2022:03:03 09:10:11"), "Month 11");
        assert_eq!(label(t0, "2022:03:04 09:10:11"), "Year 1");
        assert_eq!(label(t0, "2022:06:01 11:22:33"), "Year 1 Month 2");
        assert_eq!(label(t0, "2022:06:04 11:22:33"), "Year 1 Month 3");
        assert_eq!(label(t0, "2031:03:04 09:10:11"), "Year 10");
        // Across a year end and February of a leap year.
        assert_eq!(
            label("2019:12:20 12:00:00", "2020:01:19 12:00:00"),
            "Day 30"
        );
        assert_eq!(
            label("2019:12:20 12:00:00", "2020:01:20 12:00:00"),
            "Month 1"
        );
        assert_eq!(
            label("2020:02:01 00:00:00", "2020:03:01 00:00:00"),
            "Month 1"
        );
        assert_eq!(
            label("2020:02:10 00:00:00", "2020:03:09 00:00:00"),
            "Day 28"
        );
        assert_eq!(
            label("2021:02:10 00:00:00", "2021:03:09 00:00:00"),
            "Day 27"
        );
        assert_eq!(
            label("2022:06:01 00:00:00", "2021:03:04 00:00:00"),
            "Year 1 Month 2 before"
        );
    }

    #[test]
    fn unix_times_convert_to_civil() {
        assert_eq!(DateTime::from_unix(0), dt("1970:01:01 00:00:00"));
        assert_eq!(DateTime::from_unix(951_782_400), dt("2000:02:29 00:00:00"));
        assert_eq!(
            DateTime::from_unix(1_614_849_011),
            dt("2021:03:04 09:10:11")
        );
        assert_eq!(DateTime::from_unix(-86_400), dt("1969:12:31 00:00:00"));
        for days in [-800_000i64, -1, 0, 59, 60, 365, 11_016, 2_932_896] {
            let d = DateTime::from_unix(days * 86_400);
            assert_eq!(d.day_number(), days);
        }
    }

    #[test]
    fn default_labels_by_count() {
        assert_eq!(default_labels(2), ["Before", "After"]);
        assert_eq!(default_labels(3), ["Before", "During", "After"]);
        assert_eq!(
            default_labels(5),
            ["Before", "During 1", "During 2", "During 3", "After"]
        );
        assert_eq!(
            parse_labels("Week 0, Week 12 ,Week 40"),
            ["Week 0", "Week 12", "Week 40"]
        );
    }

    #[test]
    fn order_is_capture_time_then_file_time_then_name() {
        let key = |c: Option<&str>, f: Option<&str>, n: &str| SortKey {
            capture: c.map(dt),
            file_time: f.map(dt),
            name: n.into(),
        };
        let keys = [
            key(
                Some("2022:01:01 00:00:00"),
                Some("2000:01:01 00:00:00"),
                "a.jpg",
            ),
            key(None, None, "0.jpg"),
            key(Some("2021:01:01 00:00:00"), None, "z.jpg"),
            key(None, Some("2021:06:01 00:00:00"), "b.jpg"),
            key(Some("2021:01:01 00:00:00"), None, "y.jpg"),
        ];
        assert_eq!(chronological_order(&keys), [4, 2, 3, 0, 1]);
    }
}
