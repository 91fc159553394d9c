//! `admin`: operator commands against the configured table (`TABLE_NAME`, `KMS_KEY_ID`,
//! AWS_* variables).
//!
//!   admin api-key create --organization-id ORG [--description TEXT]
//!   admin api-key list --organization-id ORG
//!   admin api-key revoke KEY_ID
//!   admin sip-credential get --organization-id ORG --provider-id ID
//!   admin run-job reverify|sweep-orphans [--grace-seconds N]
//!   admin bootstrap
//!
//! `api-key create` prints the new key once, as the last line of its output; `sip-credential
//! get` prints what the call engine gets from `get-sip-credential` as one JSON line; `run-job`
//! runs a scheduled job's planner and worker in-process (the function configuration: table,
//! KMS key, Twilio, `PLATFORM_SIP_URI`) and prints its summary as the last line (`--grace-seconds
//! N`: the sweeper takes an intent once it is N seconds old rather than once its writer's
//! timeout has passed; 0 takes every one, so use it only with no request running); `bootstrap` creates
//! the table, the KMS key (alias) and the deletion and jobs queues where missing (a local stack
//! for `sam local`, say) and prints `DELETION_QUEUE_URL=…` and `JOBS_QUEUE_URL=…`.

use functions::provider::sip_credential::{self, SipCredentialReader};
use shared::model::OrganizationId;
use shared::queue::Job;
use shared::storage::api_keys::ApiKeyStore;
use std::process::ExitCode;
use uuid::Uuid;

const USAGE: &str = "usage:
  admin api-key create --organization-id ORG [--description TEXT]
  admin api-key list --organization-id ORG
  admin api-key revoke KEY_ID
  admin sip-credential get --organization-id ORG --provider-id ID
  admin run-job reverify|sweep-orphans [--grace-seconds N]
  admin bootstrap";

enum Command {
    Create { org: OrganizationId, description: Option<String> },
    List { org: OrganizationId },
    Revoke { key_id: String },
    SipCredential { org: OrganizationId, provider_id: Uuid },
    RunJob { job: Job, grace: Option<std::time::Duration> },
    Bootstrap,
}

fn parse(args: &[String]) -> Result<Command, String> {
    if let [only] = args {
        return match only.as_str() {
            "bootstrap" => Ok(Command::Bootstrap),
            other => Err(format!("unknown command {other:?}")),
        };
    }
    let [group, action, rest @ ..] = args else { return Err("missing command".into()) };
    let mut org = None;
    let mut description = None;
    let mut provider_id = None;
    let mut grace = None;
    let mut positional = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--organization-id" => org = Some(iter.next().ok_or("--organization-id needs a value")?.clone()),
            "--description" => description = Some(iter.next().ok_or("--description needs a value")?.clone()),
            "--grace-seconds" => {
                let value = iter.next().ok_or("--grace-seconds needs a value")?;
                let seconds = value.parse().map_err(|_| format!("{value:?} is not a number of seconds"))?;
                grace = Some(std::time::Duration::from_secs(seconds));
            }
            "--provider-id" => provider_id = Some(iter.next().ok_or("--provider-id needs a value")?.clone()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            value => positional.push(value.to_owned()),
        }
    }
    let org = || {
        let org = org.clone().ok_or("--organization-id is required")?;
        OrganizationId::parse(&org)
            .ok_or_else(|| format!("{org:?} is not a valid organization id (1-128 of letters, digits, - _ . :)"))
    };
    match (group.as_str(), action.as_str(), positional.as_slice()) {
        ("api-key", "create", []) => Ok(Command::Create { org: org()?, description }),
        ("api-key", "list", []) => Ok(Command::List { org: org()? }),
        ("api-key", "revoke", [key_id]) => Ok(Command::Revoke { key_id: key_id.clone() }),
        ("api-key", "revoke", _) => Err("revoke takes exactly one KEY_ID".into()),
        ("sip-credential", "get", []) => {
            let id = provider_id.ok_or("--provider-id is required")?;
            let provider_id = Uuid::parse_str(&id).map_err(|_| format!("{id:?} is not a provider id (a UUID)"))?;
            Ok(Command::SipCredential { org: org()?, provider_id })
        }
        ("run-job", "sweep-orphans", []) => Ok(Command::RunJob { job: Job::SweepOrphans, grace }),
        ("run-job", _, []) if grace.is_some() => Err("--grace-seconds is for sweep-orphans only".into()),
        ("run-job", name, []) => Job::parse(name)
            .map(|job| Command::RunJob { job, grace: None })
            .ok_or_else(|| format!("unknown job {name:?} (reverify or sweep-orphans)")),
        ("api-key" | "sip-credential" | "run-job", other, _) => {
            Err(format!("unknown action {other:?} (or unexpected arguments)"))
        }
        (other, _, _) => Err(format!("unknown command group {other:?}")),
    }
}

/// `run-job`: the job's planner and worker, in-process, eight items at a time.
async fn run_job(job: Job, grace: Option<std::time::Duration>) -> ExitCode {
    let services = match functions::services::Services::from_env().await {
        Ok(services) => services,
        Err(e) => {
            eprintln!("admin: {e}");
            return ExitCode::from(2);
        }
    };
    match functions::provider::jobs::run_in_process(&services, job, 8, grace).await {
        Ok(run) => {
            println!("{}", serde_json::to_string(&run).expect("the summary serializes"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("admin: {e}");
            ExitCode::from(1)
        }
    }
}

/// `bootstrap`: the storage and queues the functions expect, created where missing.
async fn bootstrap() -> ExitCode {
    let storage = match shared::config::StorageConfig::from_env() {
        Ok(storage) => storage,
        Err(e) => {
            eprintln!("admin: {e}");
            return ExitCode::from(2);
        }
    };
    let aws = shared::tls::aws_sdk_config().await;
    let created = async {
        tools::bootstrap::bootstrap(&aws, &storage).await?;
        let deletions = tools::bootstrap::deletion_queue(&aws, &storage).await?;
        let jobs = tools::bootstrap::jobs_queue(&aws, &storage).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((deletions, jobs))
    };
    match created.await {
        Ok((deletions, jobs)) => {
            println!("DELETION_QUEUE_URL={deletions}");
            println!("JOBS_QUEUE_URL={jobs}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The whole chain: an SDK error's own text ("dispatch failure") does not say why.
            eprintln!("admin: bootstrap failed: {}", shared::error::chain(&*e));
            ExitCode::from(1)
        }
    }
}

/// `sip-credential get`: the same read (and audit line) as the `get-sip-credential` function.
async fn sip_credential_get(org: &OrganizationId, provider_id: Uuid) -> ExitCode {
    let reader = match SipCredentialReader::from_env().await {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("admin: {e}");
            return ExitCode::from(2);
        }
    };
    let operator = shared::audit::Actor { kind: "operator".into(), id: std::env::var("USER").ok() };
    let outcome = shared::audit::acting_as(operator, sip_credential::read(&reader, org, provider_id)).await;
    // The audit line goes to stderr; stdout carries only the answer.
    let audited = outcome.as_ref().map_or_else(|e| e.error_type(), |_| "returned");
    eprintln!("audit: sip-credential read by admin: organization={org} provider={provider_id} outcome={audited}");
    match outcome {
        Ok(credential) => {
            println!("{}", serde_json::to_string(&credential).expect("the credential serializes"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("admin: {e} ({})", e.error_type());
            ExitCode::from(1)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let command = match parse(&args) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("admin: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Command::SipCredential { org, provider_id } = &command {
        return sip_credential_get(org, *provider_id).await;
    }
    if let Command::RunJob { job, grace } = command {
        return run_job(job, grace).await;
    }
    if let Command::Bootstrap = command {
        return bootstrap().await;
    }
    let table = match shared::config::table_name_from_env() {
        Ok(table) => table,
        Err(e) => {
            eprintln!("admin: {e}");
            return ExitCode::from(2);
        }
    };
    let aws = shared::tls::aws_sdk_config().await;
    let keys = ApiKeyStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let outcome = match command {
        Command::Create { org, description } => keys.create(&org, description.as_deref()).await.map(|(info, key)| {
            println!("Created API key {} for organization {}.", info.key_id, info.organization_id);
            println!("Store it now: it is shown only this once.");
            println!("{}", key.expose());
        }),
        Command::List { org } => keys.list(&org).await.map(|list| {
            println!("{:<18} {:<22} {:<22} {:<8} DESCRIPTION", "KEY ID", "PREFIX", "CREATED", "REVOKED");
            for key in list {
                println!(
                    "{:<18} {:<22} {:<22} {:<8} {}",
                    key.key_id,
                    key.prefix,
                    key.created_at,
                    key.revoked,
                    key.description.unwrap_or_default()
                );
            }
        }),
        Command::SipCredential { .. } | Command::RunJob { .. } | Command::Bootstrap => unreachable!("handled above"),
        Command::Revoke { key_id } => match keys.revoke(&key_id).await {
            Ok(true) => {
                println!("Revoked API key {key_id}.");
                Ok(())
            }
            Ok(false) => {
                eprintln!("admin: no API key {key_id}");
                return ExitCode::from(1);
            }
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("admin: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_sweep_takes_a_grace_override_and_nothing_else_does() {
        let grace = |line: &str| match parse(&args(line)) {
            Ok(Command::RunJob { job, grace }) => Ok((job, grace)),
            Ok(_) => panic!("{line}: not run-job"),
            Err(e) => Err(e),
        };
        assert_eq!(grace("run-job sweep-orphans"), Ok((Job::SweepOrphans, None)));
        assert_eq!(
            grace("run-job sweep-orphans --grace-seconds 0"),
            Ok((Job::SweepOrphans, Some(std::time::Duration::ZERO)))
        );
        assert_eq!(grace("run-job reverify"), Ok((Job::Reverify, None)));
        assert!(grace("run-job reverify --grace-seconds 5").is_err());
        assert!(grace("run-job sweep-orphans --grace-seconds soon").is_err());
        assert!(grace("run-job sweep-orphans --grace-seconds").is_err());
    }
}
