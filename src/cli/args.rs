//! Command-line definitions (clap derive). Help texts live here; the
//! conversion to library options is in the command modules.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "photodeid",
    version,
    about = "Make clinical photos safe to share: strip identifying metadata, pseudonymise names",
    long_about = "Make clinical photos safe to share.\n\n\
        photodeid removes EXIF (GPS, serial numbers, dates, maker notes, thumbnails), XMP, \
        IPTC/Photoshop, comments, PNG text chunks, C2PA manifests and every byte after the \
        image's end, losslessly where the format allows. Outputs get pseudonymous names.\n\n\
        Exit codes: 0 success; 1 some file failed (check: identifying content found); \
        2 usage or fatal error (check: a file could not be read).",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// None (started without arguments, e.g. by a double-click): serve the
    /// current folder and open the browser.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The README's examples, shown after `--help` (a test checks that each one
/// parses and is in the README).
pub const EXAMPLES: &str = "\
Examples:
  photodeid clean photo.jpg -o shared.jpg
  photodeid clean photos/ -o out/ --regions regions.csv --effect pixelate
  photodeid clean smile.jpg -o shared.jpg --region 35%,20%,30%,15%
  photodeid collage before.jpg during.jpg after.jpg -o case.jpg
  photodeid collage --cases cases/ -o collages/ --time-labels --map ../case-map.csv
  photodeid serve photos/ -o shared/ --port 0
  photodeid watch inbox -o outbox --once
  photodeid watch /mnt/share/inbox -o outbox --poll";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clean photos: scrub metadata, pseudonymise names, write to an output folder
    Clean(CleanArgs),
    /// Audit photos: list the identifying content each one carries
    Check(CheckArgs),
    /// Before/after collage of photos, or one per case folder (--cases)
    #[command(long_about = COLLAGE_ABOUT)]
    Collage(Box<CollageArgs>),
    /// Local web page: see the photos, drag boxes over eyes or badges, export clean copies
    #[command(long_about = SERVE_ABOUT)]
    Serve(ServeArgs),
    /// Watch an inbox folder: clean every photo that lands there into an outbox, crash-safe
    #[command(long_about = WATCH_ABOUT)]
    Watch(WatchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(long_about = COMPLETIONS_ABOUT)]
    Completions(CompletionsArgs),
    /// Write the man pages (photodeid.1 and one per subcommand) into a folder
    #[command(hide = true)]
    Man(ManArgs),
    /// List the faces and eyes the detector proposes, writing nothing (unless --manifest)
    Detect(DetectArgs),
    /// Freeze the listing of a sharded run: a sorted manifest with a digest (docs/cluster.md)
    Plan(PlanArgs),
    /// Create a name key (0600) for keyed pseudonyms; sharded runs never create one implicitly
    Keygen(KeygenArgs),
    /// Check a sharded run is complete and write its one map; exit 1 lists missing chunks
    Merge(MergeArgs),
}

const COMPLETIONS_ABOUT: &str = "Print a shell completion script on stdout.\n\n\
        bash: photodeid completions bash > ~/.local/share/bash-completion/completions/photodeid\n\
        zsh:  photodeid completions zsh > ~/.zfunc/_photodeid (with fpath+=~/.zfunc)\n\
        fish: photodeid completions fish > ~/.config/fish/completions/photodeid.fish";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Folder for the pages (created if missing)
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Photos and folders to look at
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Print JSON (one object per file) instead of text
    #[arg(long)]
    pub json: bool,

    /// Score at which a face counts as found (those from 0.3 up are listed as "maybe")
    #[arg(long, value_name = "THRESHOLD", default_value_t = photodeid::faces::DEFAULT_THRESHOLD,
          value_parser = parse_threshold)]
    pub threshold: f32,

    /// Also write the faces found as a regions manifest (CSV, 0600) for `clean --regions`,
    /// with `source` and `score` columns; add --eyes for the eye bars too
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// With --manifest: write the eye bars as well
    #[arg(long)]
    pub eyes: bool,

    /// Replace an existing manifest
    #[arg(long)]
    pub overwrite: bool,

    /// Refuse images larger than this many megapixels
    #[arg(long, value_name = "MP", default_value_t = 200)]
    pub max_megapixels: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrientationArg {
    /// Keep a lone EXIF Orientation tag (lossless; JPEG and WebP)
    Keep,
    /// Rotate the pixels and drop the tag (re-encodes rotated photos)
    Apply,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Photos and folders to clean (folders are walked recursively; hidden entries skipped)
    #[arg(required_unless_present_any = ["manifest", "files_from"])]
    pub inputs: Vec<PathBuf>,

    /// Output folder (created if missing), or an output file when there is one input file
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Number of files processed in parallel [default: all cores]
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    pub threads: usize,

    /// Say per file what would be removed; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Replace outputs that already exist (default: never)
    #[arg(long)]
    pub overwrite: bool,

    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Print one JSON object per file, then a summary object, on stdout
    #[arg(long)]
    pub json: bool,

    /// Also show original paths next to pseudonyms (not for shared logs)
    #[arg(short, long)]
    pub verbose: bool,

    /// Write the original -> pseudonym link to this CSV file (refused inside OUT)
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,

    /// fsync every output before reporting it done (slower; for removable or network disks)
    #[arg(long)]
    pub sync: bool,

    /// Run this shell command for each file that fails, with its pseudonym and the reason
    /// ($1 and $2, and $PHOTODEID_PSEUDONYM, $PHOTODEID_REASON); never the original path
    #[arg(long, value_name = "CMD")]
    pub on_failure: Option<String>,

    #[command(flatten)]
    pub cleaning: CleaningArgs,

    #[command(flatten)]
    pub sharding: ShardArgs,
}

/// `clean` over a frozen plan, one shard of it per process (docs/cluster.md).
#[derive(Debug, Args)]
#[command(next_help_heading = "Sharded runs (see docs/cluster.md)")]
pub struct ShardArgs {
    /// Clean the files of this plan (`photodeid plan`) instead of walking INPUTS; needs --name-key
    #[arg(long, value_name = "FILE", conflicts_with_all = ["inputs", "files_from", "dry_run", "verbose"])]
    pub manifest: Option<PathBuf>,

    /// Run folder for the chunks' maps, failed lists and done markers [default: the manifest's folder]
    #[arg(long, value_name = "RUN", requires = "manifest")]
    pub run_dir: Option<PathBuf>,

    /// This process's share: K/N (chunks c with c mod N = K), or auto (from SLURM_ARRAY_TASK_ID,
    /// JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX or BATCH_TASK_INDEX)
    #[arg(
        long,
        value_name = "K/N|auto",
        requires = "manifest",
        conflicts_with = "chunks"
    )]
    pub shard: Option<photodeid::shard::select::ShardArg>,

    /// Number of shards where the scheduler does not say (Kubernetes Indexed Jobs, AWS Batch)
    #[arg(long, value_name = "N", requires = "shard")]
    pub shard_count: Option<u64>,

    /// Exactly these chunks, e.g. 3,17,40-42 (as `merge` lists the missing ones)
    #[arg(long, value_name = "LIST", requires = "manifest", value_parser = parse_chunks)]
    pub chunks: Option<ChunkList>,

    /// Read the files to clean from FILE (one path a line), or from stdin with -
    #[arg(long, value_name = "FILE|-")]
    pub files_from: Option<PathBuf>,

    /// With --files-from: paths are separated by NUL bytes, not newlines
    #[arg(short = '0', long = "null", requires = "files_from")]
    pub null: bool,
}

/// A parsed `--chunks` list: sorted, merged, inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkList(pub Vec<(u64, u64)>);

fn parse_chunks(s: &str) -> Result<ChunkList, String> {
    photodeid::shard::select::parse_chunk_list(s).map(ChunkList)
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Photos and folders to list (walked once, hidden entries skipped)
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// The manifest to write (private, 0600; never over an existing one), e.g. RUN/manifest.tsv
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Files per chunk: the unit that is skipped when done and redone when not
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub chunk_size: u64,

    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key file to create (0600; never over an existing file)
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The run folder the shards wrote into
    #[arg(long, value_name = "RUN")]
    pub run_dir: PathBuf,

    /// The plan [default: RUN/manifest.tsv]
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Write the original -> pseudonym map here [default: RUN/map.csv] (refused inside OUT)
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,

    /// Replace an existing --map file
    #[arg(long)]
    pub overwrite: bool,

    /// Also re-audit every output with the parser of `check` (with --shard/--chunks: only those chunks)
    #[arg(long)]
    pub verify: bool,

    /// With --verify: this process's share of the chunks, K/N or auto
    #[arg(
        long,
        value_name = "K/N|auto",
        requires = "verify",
        conflicts_with = "chunks"
    )]
    pub shard: Option<photodeid::shard::select::ShardArg>,

    /// With --shard auto: number of shards where the scheduler does not say
    #[arg(long, value_name = "N", requires = "shard")]
    pub shard_count: Option<u64>,

    /// With --verify: exactly these chunks
    #[arg(long, value_name = "LIST", requires = "verify", value_parser = parse_chunks)]
    pub chunks: Option<ChunkList>,

    /// Threads for --verify [default: the CPUs granted]
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    pub threads: usize,

    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// How each photo is cleaned and named, shared by `clean` and `watch`.
#[derive(Debug, Args)]
pub struct CleaningArgs {
    /// Keep orientation as a tag (lossless) or apply it to the pixels (HEIC/HEIF/AVIF: either way kept in irot/imir, lossless, never an EXIF tag)
    #[arg(long, value_enum, default_value_t = OrientationArg::Keep)]
    pub orientation: OrientationArg,

    /// Drop the ICC colour profile too (kept by default: clinical colour matters)
    #[arg(long)]
    pub strip_icc: bool,

    /// Transcode JPEGs losslessly at the coefficient level (pixels bit-exact, every table and scan re-coded): removes anything hidden inside the compressed data
    #[arg(long)]
    pub thorough: bool,

    /// Key for stable names (same photo, same name on every run; created if missing)
    /// [default: name.key in the user's data folder, created once]
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep_names", "random_names"])]
    pub name_key: Option<PathBuf>,

    /// One-off random output names that link to nothing (a re-run makes new copies)
    #[arg(long, conflicts_with = "keep_names")]
    pub random_names: bool,

    /// All outputs in one folder: no case folders, no capture-order names
    #[arg(long)]
    pub flat: bool,

    /// Keep original file and folder names (they often identify the patient)
    #[arg(long)]
    pub keep_names: bool,

    /// JPEG quality of re-encoded photos (default: the source's estimated quality, else 92)
    #[arg(long, value_name = "1-100", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: Option<u8>,

    /// Refuse images larger than this many megapixels (decompression bombs)
    #[arg(long, value_name = "MP", default_value_t = 200)]
    pub max_megapixels: u64,

    /// Research option: keep these technical EXIF tags (comma-separated groups), rewritten as
    /// a fresh minimal EXIF; never serials, names, dates, GPS or maker notes (JPEG, PNG, WebP)
    #[arg(long, value_name = "GROUP,...", value_enum, value_delimiter = ',')]
    pub keep: Vec<KeepArg>,

    /// Research option: keep the capture dates, moved by a keyed offset per case folder
    /// (intervals within a case survive, no real date does). Not HIPAA Safe Harbor
    #[arg(long, requires = "name_key")]
    pub shift_dates: bool,

    #[command(flatten)]
    pub region: RegionArgs,
}

/// The technical EXIF tag groups of `--keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeepArg {
    /// ExposureTime, ExposureProgram, ExposureBiasValue, ExposureMode, ShutterSpeedValue, BrightnessValue
    Exposure,
    /// FNumber, ApertureValue, MaxApertureValue
    Aperture,
    /// PhotographicSensitivity (ISO), SensitivityType
    Iso,
    /// FocalLength, FocalLengthIn35mmFilm, DigitalZoomRatio
    FocalLength,
    /// LensMake, LensModel, LensSpecification (never the lens serial number)
    Lens,
    /// WhiteBalance, LightSource
    WhiteBalance,
    /// Flash
    Flash,
    /// MeteringMode
    Metering,
    /// SceneCaptureType, Contrast, Saturation, Sharpness, GainControl, SubjectDistanceRange
    Scene,
    /// Every group above
    All,
}

/// Region redaction options, shared by `clean` and `collage`.
#[derive(Debug, Args)]
pub struct RegionArgs {
    /// Region to destroy, repeatable: [SHAPE:]X,Y,W,H[:EFFECT]
    ///
    /// Values in pixels or percent (per value) of the photo as displayed (after
    /// orientation). SHAPE is rect (default) or ellipse; EFFECT is fill, pixelate
    /// or blur (default: --effect). Examples: `35%,20%,30%,15%`,
    /// `ellipse:1200,400,600,300:pixelate`. A photo with regions is re-encoded,
    /// upright, with no metadata at all.
    #[arg(long = "region", value_name = "REGION", value_parser = parse_region)]
    pub regions: Vec<photodeid::region::RegionSpec>,

    /// CSV manifest of regions for batches: header `file,x,y,w,h[,shape][,effect][,source][,score]`
    ///
    /// `file` is a path relative to the input folder, or a glob (`*`, `?`, `**`).
    /// A row that matches no input is an error.
    #[arg(long = "regions", value_name = "FILE")]
    pub regions_file: Option<PathBuf>,

    /// Default effect for regions. fill is the safest; pixelate and blur keep only
    /// coarse block averages (never a light, reversible blur)
    #[arg(long, value_enum, default_value_t = EffectArg::Fill)]
    pub effect: EffectArg,

    /// Find faces and destroy each (ellipse, grown 1.3x around its centre) with --effect
    ///
    /// CenterFace proposes the faces; those scoring at least THRESHOLD (default 0.5)
    /// are applied, those from 0.3 up are listed in --json but not applied. A photo
    /// where no face is found gets a warning: check it yourself. Detection can miss
    /// faces (profiles, masks, heavy shadow): look at every output before sharing.
    #[arg(long, value_name = "THRESHOLD", num_args = 0..=1, require_equals = true,
          default_missing_value = "0.5", value_parser = parse_threshold)]
    pub faces: Option<f32>,

    /// Find faces and destroy a bar over each face's eyes. Masking the eyes does
    /// not make a face anonymous (ICMJE); combine with --faces for that
    #[arg(long)]
    pub eyes: bool,

    /// Colour of the fill effect: RRGGBB hex or black/white/gray
    #[arg(long, value_name = "COLOUR", default_value = "000000", value_parser = parse_colour)]
    pub fill_color: [u8; 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EffectArg {
    /// Solid colour (safest)
    Fill,
    /// Coarse blocks (at least 16 px and 1/8 of the region)
    Pixelate,
    /// Smooth interpolation of coarse block means
    Blur,
}

impl From<EffectArg> for photodeid::region::Effect {
    fn from(e: EffectArg) -> Self {
        match e {
            EffectArg::Fill => photodeid::region::Effect::Fill,
            EffectArg::Pixelate => photodeid::region::Effect::Pixelate,
            EffectArg::Blur => photodeid::region::Effect::Blur,
        }
    }
}

fn parse_region(s: &str) -> Result<photodeid::region::RegionSpec, String> {
    s.parse()
}

fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.3..=1.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("threshold {s} is outside 0.3-1.0")),
        Err(_) => Err(format!("bad threshold {s:?}: a score such as 0.5")),
    }
}

fn parse_colour(s: &str) -> Result<[u8; 3], String> {
    match s.to_ascii_lowercase().as_str() {
        "black" => return Ok([0, 0, 0]),
        "white" => return Ok([255, 255, 255]),
        "gray" | "grey" => return Ok([128, 128, 128]),
        _ => {}
    }
    let hex = s.trim_start_matches('#');
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "bad colour {s:?}: use RRGGBB hex, black, white or gray"
        ));
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Photos and folders to audit
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Print JSON (one object per file) instead of text
    #[arg(long)]
    pub json: bool,

    /// Print only files that carry identifying content or cannot be read
    #[arg(short, long)]
    pub quiet: bool,

    /// Refuse images larger than this many megapixels
    #[arg(long, value_name = "MP", default_value_t = 200)]
    pub max_megapixels: u64,

    /// Also decode the compressed picture data (JPEG entropy-coded data, WebP bitstreams) and report bytes hidden inside it, which only a full decode reveals (what `clean --thorough` removes)
    #[arg(long)]
    pub thorough: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// A row; with --size, whichever of row, column and grid crops the photos least
    Auto,
    /// Side by side
    Row,
    /// Stacked
    Column,
    /// Balanced rows (5 = 3 + 2), a shorter row centred
    Grid,
    /// The first photo large, the others stacked beside it
    Feature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransitionArg {
    /// The next photo replaces the last at once
    Cut,
    /// A divider sweeps left to right, uncovering the next photo (0.6 s)
    Wipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlignArg {
    /// The one likely face of each photo at the same place and size
    Faces,
    /// The eyes of each photo's one likely face at the same place and distance apart
    Eyes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CollageFormatArg {
    Jpg,
    Png,
    /// Lossless WebP
    Webp,
    /// Animated before/after: the photos one at a time in one panel, each held 1.2 s, looping
    Gif,
}

/// The long help of `collage` (on the subcommand, where clap reads it).
const COLLAGE_ABOUT: &str = "Make a before/after collage.\n\n\
        photodeid collage a.jpg b.jpg c.jpg -o case.jpg puts the photos in the given order. \
        photodeid collage --cases DIR -o OUTDIR makes one collage per subfolder of DIR, its \
        photos ordered by capture time (EXIF DateTimeOriginal, then CreateDate, then file \
        time, then name), named by a pseudonym. The collage carries no metadata. \
        Exit codes: 0 success; 1 a photo or case failed; 2 usage or fatal error.";

#[derive(Debug, Args)]
pub struct CollageArgs {
    /// Photos, in the order they appear (not with --cases)
    #[arg(required_unless_present = "cases", conflicts_with = "cases")]
    pub photos: Vec<PathBuf>,

    /// A folder of case folders: one collage per subfolder, photos ordered by capture time
    #[arg(long, value_name = "DIR")]
    pub cases: Option<PathBuf>,

    /// Output file (format from its extension: jpg, png, webp), or output folder with --cases
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Labels under the tiles, comma-separated, one per photo [default: Before,During,After]
    #[arg(long, value_name = "A,B,...")]
    pub labels: Option<String>,

    /// Add the interval since the first photo to each label (Day 0, Month 6, Year 1 Month 3)
    #[arg(long)]
    pub time_labels: bool,

    /// Title above the tiles
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,

    /// How the panels are arranged (every panel the same size and shape) [default: auto]
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,

    /// Largest output width in pixels; tiles shrink to fit
    #[arg(long, value_name = "PX", default_value_t = photodeid::collage::DEFAULT_MAX_WIDTH,
          value_parser = clap::value_parser!(u32).range(64..=60_000))]
    pub max_width: u32,

    /// Mirror these tiles left-right (1-based positions, comma-separated: --flip 2,3)
    #[arg(long, value_name = "N,...", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    pub flip: Vec<u32>,

    /// Output format with --cases
    #[arg(long, value_enum, default_value_t = CollageFormatArg::Jpg, requires = "cases")]
    pub format: CollageFormatArg,

    /// JPEG quality of the collage
    #[arg(long, value_name = "1-100", default_value_t = 92,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,

    /// Key for stable case names (same folder, same case pseudonym, as `clean` gives it)
    /// [default: name.key in the user's data folder, created once]
    #[arg(
        long,
        value_name = "FILE",
        requires = "cases",
        conflicts_with = "random_names"
    )]
    pub name_key: Option<PathBuf>,

    /// One-off random names for case collages (a re-run makes new copies)
    #[arg(long, requires = "cases")]
    pub random_names: bool,

    /// Case collages in one folder, named after the case (the layout before case folders)
    #[arg(long, requires = "cases")]
    pub flat: bool,

    /// Write the case folder -> collage link to this CSV file (refused inside OUT)
    #[arg(long, value_name = "FILE", requires = "cases")]
    pub map: Option<PathBuf>,

    /// Replace outputs that already exist (default: never)
    #[arg(long)]
    pub overwrite: bool,

    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Refuse images larger than this many megapixels (decompression bombs)
    #[arg(long, value_name = "MP", default_value_t = 200)]
    pub max_megapixels: u64,

    /// With --cases: this process's share of the case folders, K/N or auto: chunk C (the
    /// C-th case of the frozen RUN/cases.tsv) goes to shard C mod N (needs --run-dir, --name-key)
    #[arg(long, value_name = "K/N|auto", requires = "run_dir")]
    pub shard: Option<photodeid::shard::select::ShardArg>,

    /// With --cases: a sharded run's folder (outside OUT): the frozen case list, per-case done
    /// markers; finished cases are skipped; `photodeid merge --run-dir RUN` checks it is complete
    #[arg(long, value_name = "RUN", requires = "cases")]
    pub run_dir: Option<PathBuf>,

    /// With --shard auto: number of shards where the scheduler does not say
    #[arg(long, value_name = "N", requires = "shard")]
    pub shard_count: Option<u64>,

    #[command(flatten)]
    pub region: RegionArgs,

    /// Exact output size: square (1080x1080), portrait (1080x1350), story (1080x1920), landscape (1200x630) or WxH
    #[arg(long, value_name = "SIZE", value_parser = parse_collage_size)]
    pub size: Option<(u32, u32)>,

    /// Per-photo framing: a regions manifest's `framing` column ("zoom 1.5 50% 40%", "crop X Y W H"; also read from --regions), or the older file,zoom,center_x,center_y[,x,y,w,h] CSV (a plain regions manifest is refused)
    #[arg(long, value_name = "FILE")]
    pub framing: Option<PathBuf>,

    /// How an animated (.gif) collage goes from one photo to the next
    #[arg(long, value_enum, value_name = "HOW", default_value_t = TransitionArg::Cut)]
    pub transition: TransitionArg,

    /// Frame each photo on its one likely face (or eyes) so it sits at the same place and size in every panel; an explicit framing wins; needs the `faces` build feature
    #[arg(long, value_enum, value_name = "WHAT")]
    pub align: Option<AlignArg>,

    /// Practice logo (PNG with transparency) drawn in a corner
    #[arg(long, value_name = "FILE")]
    pub logo: Option<PathBuf>,

    /// Corner of the logo: top-left, top-right, bottom-left, bottom-right [default: bottom-right]
    #[arg(long, value_name = "CORNER")]
    pub logo_corner: Option<String>,

    /// Logo width as a fraction of the collage width [default: 0.18]
    #[arg(long, value_name = "FRACTION")]
    pub logo_size: Option<f32>,

    /// Logo opacity, 0 to 1 [default: 1]
    #[arg(long, value_name = "0-1")]
    pub logo_opacity: Option<f32>,

    /// Background colour, RRGGBB [default: ffffff]
    #[arg(long, value_name = "RRGGBB")]
    pub background: Option<String>,

    /// Label and title colour, RRGGBB [default: 141414]
    #[arg(long, value_name = "RRGGBB")]
    pub label_color: Option<String>,

    /// A line under the panels ("Individual results vary")
    #[arg(long, value_name = "TEXT")]
    pub footer: Option<String>,

    /// Practice profile (TOML: size, layout, colours, footer, logo); flags win over it
    #[arg(long, value_name = "FILE")]
    pub style: Option<PathBuf>,

    /// Consent register (CSV: case,purposes,signed), kept private; refused inside OUT
    #[arg(long, value_name = "FILE")]
    pub consent: Option<PathBuf>,

    /// Make only cases whose written consent in --consent gives this purpose (social-media, colleague, research, ...)
    #[arg(long, value_name = "PURPOSE", requires = "consent")]
    pub purpose: Option<String>,
}

fn parse_collage_size(s: &str) -> Result<(u32, u32), String> {
    photodeid::collage::parse_size(s)
}

/// The long help of `serve`.
const SERVE_ABOUT: &str = "Serve a local web page to mark regions and export clean photos.\n\n\
        The server listens on 127.0.0.1 only and prints its address with a random token; \
        every request without the token is refused. It reads photos only inside FOLDER and \
        writes only into the output folder (cleaned photos, collages) and FOLDER's regions \
        manifest (.photodeid-regions.csv). Stop it with Ctrl-C.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The folder of photos (subfolders are series, or cases)
    #[arg(default_value = ".")]
    pub folder: PathBuf,

    /// Port on 127.0.0.1 (0 takes a free port)
    #[arg(long, value_name = "N", default_value_t = 8765)]
    pub port: u16,

    /// Output folder for exports (created if missing) [default: FOLDER-clean, beside FOLDER]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Refuse images larger than this many megapixels (decompression bombs)
    #[arg(long, value_name = "MP", default_value_t = 200)]
    pub max_megapixels: u64,

    /// Transcode JPEGs losslessly at the coefficient level (pixels bit-exact, every table and scan re-coded): removes anything hidden inside the compressed data
    #[arg(long)]
    pub thorough: bool,

    /// Do not open the page in the default browser (print its address only)
    #[arg(long)]
    pub no_open: bool,

    /// Key for stable output names [default: name.key in the user's data folder, created once]
    #[arg(long, value_name = "FILE", conflicts_with = "random_names")]
    pub name_key: Option<PathBuf>,

    /// One-off random output names that link to nothing (re-exports make new copies)
    #[arg(long)]
    pub random_names: bool,

    /// All outputs in one folder, no case folders or capture-order names
    #[arg(long)]
    pub flat: bool,

    /// Practice profile for collages (TOML, as `collage --style`: logo, colours, footer...); repeat to offer several. FOLDER/.photodeid-style.toml is offered too
    #[arg(long, value_name = "FILE")]
    pub style: Vec<PathBuf>,
}

/// The long help of `watch` (on the subcommand, where clap reads it).
const WATCH_ABOUT: &str = "Watch an inbox folder and clean every photo that lands there.\n\n\
        On start the photos already in INBOX are cleaned, then new ones as they arrive (also in \
        new sub-folders). A file is processed once it has been left alone for --settle (closed \
        after writing, same size and time); partial names (.part, .tmp, ~, dotfiles) wait until \
        renamed. Each cleaned copy is audited and fsynced in OUTBOX under a keyed pseudonym \
        (the same default key as clean and serve, or --name-key), and only then is the original moved to done/ \
        (or deleted, or remembered). Files that cannot be cleaned go to failed/ with \
        <name>.error.txt. Killed at any moment and restarted, no photo is lost, half-published \
        or published twice. SIGINT/SIGTERM finish the files in flight and exit 0.\n\n\
        Exit codes: 0 success (with --once: every file cleaned); 1 with --once, a file failed; \
        2 usage or start-up error.";

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Folder to watch (must exist)
    pub inbox: PathBuf,

    /// Folder for the cleaned copies (created if missing; never inside the inbox)
    #[arg(short, long, value_name = "OUTBOX")]
    pub output: PathBuf,

    /// Where originals go after success [default: `done` beside the inbox]
    #[arg(long, value_name = "DIR", conflicts_with_all = ["keep_originals", "delete_originals"])]
    pub done: Option<PathBuf>,

    /// Leave originals in the inbox; remember them in the state folder so they are cleaned once
    #[arg(long, conflicts_with = "delete_originals")]
    pub keep_originals: bool,

    /// Delete originals once their cleaned copy is safely written
    #[arg(long)]
    pub delete_originals: bool,

    /// Where files that cannot be cleaned go, each with <name>.error.txt [default: `failed` beside the inbox]
    #[arg(long, value_name = "DIR")]
    pub failed: Option<PathBuf>,

    /// Private state folder: journal, lock (and an older install's name key) [default: `.photodeid-state` beside the inbox]
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// How long a file must be left alone before it is cleaned (e.g. 2s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub settle: std::time::Duration,

    /// A photo that ends early (still uploading) stays in the inbox and is tried again when it
    /// changes; it goes to failed/ only after this long without a change
    #[arg(long, value_name = "DURATION", default_value = "10min", value_parser = parse_duration)]
    pub incomplete_after: std::time::Duration,

    /// Scan the inbox instead of waiting for events (network shares: NFS, SMB)
    #[arg(long)]
    pub poll: bool,

    /// Scan interval with --poll
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: std::time::Duration,

    /// Clean what is in the inbox now, then exit (for cron and schedulers)
    #[arg(long)]
    pub once: bool,

    /// Append each photo's original -> pseudonym link to this CSV file (refused inside OUTBOX or INBOX)
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,

    /// Number of files processed in parallel [default: 4 per core, at most cores + 16, so fsync waits overlap]
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    pub threads: usize,

    /// Print only failures
    #[arg(short, long)]
    pub quiet: bool,

    /// Also show original paths in the log (not for shared logs)
    #[arg(short, long)]
    pub verbose: bool,

    /// Run this shell command for each file that fails (e.g. a mail), with its pseudonym and
    /// the reason ($1 and $2, and $PHOTODEID_PSEUDONYM, $PHOTODEID_REASON); never the original path
    #[arg(long, value_name = "CMD")]
    pub on_failure: Option<String>,

    #[command(flatten)]
    pub cleaning: CleaningArgs,
}

/// `2s`, `500ms`, `1m`, `1h 30m` (humantime); a bare number is seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return std::time::Duration::try_from_secs_f64(secs)
            .map_err(|e| format!("bad duration {s:?}: {e}"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("bad duration {s:?}: {e}; use e.g. 2s, 500ms, 1m, 10min"))
}

/// The clap definition, for completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

pub fn parse() -> Cli {
    Cli::parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parses(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(line.split_whitespace())
    }

    #[test]
    fn examples_parse_and_come_from_the_readme() {
        let readme = include_str!("../../README.md");
        let lines: Vec<&str> = EXAMPLES.lines().skip(1).map(str::trim).collect();
        assert!(lines.len() >= 5);
        for line in lines {
            assert!(readme.contains(line), "not in the README: {line}");
            if let Err(e) = parses(line) {
                panic!("{line}: {e}");
            }
        }
    }

    #[test]
    fn every_readme_command_parses() {
        let readme = include_str!("../../README.md");
        let mut in_code = false;
        let mut n = 0;
        for line in readme.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
                continue;
            }
            let cmd = line.split(" #").next().unwrap_or_default().trim();
            if in_code && cmd.starts_with("photodeid ") {
                n += 1;
                if let Err(e) = parses(cmd) {
                    panic!("README: {cmd}: {e}");
                }
            }
        }
        assert!(n >= 10, "only {n} commands found in the README");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("2 fortnights").is_err());
    }
}
