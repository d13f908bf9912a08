//! A file reader over `s3://` against the real S3-compatible server of `scripts/services`
//! (moto, 127.0.0.1:9000, or `BORBOLETA_S3`): the same pipeline over the same files gives the
//! same feature rows from S3 as from a local folder. Each test uses its own bucket.

use std::io::{Read, Write};

use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;

use crate::common::{borboleta, repo_root, run_env, text};

fn endpoint() -> String {
    std::env::var("BORBOLETA_S3").unwrap_or_else(|_| "127.0.0.1:9000".into())
}

/// Creates a bucket (moto takes an unsigned `PUT /<bucket>`).
fn create_bucket(name: &str) {
    let mut conn = std::net::TcpStream::connect(endpoint()).unwrap_or_else(|e| {
        panic!(
            "is the S3 server running at {}? (scripts/services up s3) {e}",
            endpoint()
        )
    });
    write!(
        conn,
        "PUT /{name} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        endpoint()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "borboleta-test"),
    ("AWS_SECRET_ACCESS_KEY", "borboleta-test-secret"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ALLOW_HTTP", "true"),
];

#[tokio::test]
async fn file_reader_reads_an_s3_folder() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("it-s3-{}-{nanos}", std::process::id());
    create_bucket(&bucket);
    let url = format!("http://{}", endpoint());
    let store = AmazonS3Builder::new()
        .with_endpoint(&url)
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id("borboleta-test")
        .with_secret_access_key("borboleta-test-secret")
        .build()
        .unwrap();

    // the example's events, split over two files of a folder
    let events = std::fs::read_to_string(repo_root().join("examples/events/data/events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let (a, b) = lines.split_at(lines.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("local")).unwrap();
    for (name, part) in [("part-0.jsonl", a), ("part-1.jsonl", b)] {
        let body = format!("{}\n", part.join("\n"));
        store
            .put(
                &object_store::path::Path::from(format!("events/{name}")),
                body.clone().into(),
            )
            .await
            .unwrap();
        std::fs::write(dir.path().join("local").join(name), body).unwrap();
    }

    let example = std::fs::read_to_string(repo_root().join("examples/events/pipeline.yaml")).unwrap();
    let spec = |path: &str| {
        example
            .replace("path: data/events.jsonl", &format!("path: {path}"))
            .replace("format: json", "format: json\n    options: {file_extension: .jsonl}")
    };
    std::fs::write(dir.path().join("s3.yaml"), spec(&format!("s3://{bucket}/events/"))).unwrap();
    std::fs::write(dir.path().join("local.yaml"), spec("local/")).unwrap();

    let endpoint_env = ("AWS_ENDPOINT", url.as_str());
    let mut env = AWS_ENV.to_vec();
    env.push(endpoint_env);
    let from_s3 = run_env(dir.path(), &["run", "s3.yaml", "--debug", "--quiet"], &env);
    assert!(from_s3.status.success(), "{}", text(&from_s3.stderr));
    let local = borboleta(dir.path(), &["run", "local.yaml", "--debug", "--quiet"], "UTC");
    assert!(local.status.success(), "{}", text(&local.stderr));
    let (got, want) = (text(&from_s3.stdout), text(&local.stdout));
    assert!(
        want.matches("\n|").count() > 300,
        "the local run printed its rows: {want}"
    );
    assert_eq!(got, want, "rows read from S3 differ from the same files read locally");

    // a missing bucket is a clear error naming the path, exit 1 or 2, and no secret is printed
    std::fs::write(
        dir.path().join("missing.yaml"),
        spec("s3://no-such-bucket-borboleta/events/"),
    )
    .unwrap();
    let out = run_env(dir.path(), &["run", "missing.yaml", "--debug", "--quiet"], &env);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no-such-bucket-borboleta"), "{err}");
    assert!(!err.contains("borboleta-test-secret"), "secret leaked: {err}");
}
