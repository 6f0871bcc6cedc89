//! `shop certs`: a development CA (the one kept in the folder, unless
//! `--new-ca`) and the shop's certificates.

use shop_kit::tls::DevCa;
use shop_proto::identity;

use crate::cli::Certs;

pub fn write(certs: &Certs) -> anyhow::Result<()> {
    let dir = &certs.dir;
    let kept = if certs.new_ca {
        None
    } else {
        DevCa::open(dir)?
    };
    let ca = match kept {
        Some(ca) => {
            println!("renewing under the CA kept in {}", dir.display());
            ca
        }
        None => DevCa::new("connect-shop development CA")?,
    };
    let written = ca
        .write_services(
            dir,
            &identity::service_names(),
            identity::NAMESPACE,
            &certs.names,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("wrote {} files to {}:", written.len(), dir.display());
    for file in &written {
        println!("  {}", file.display());
    }
    println!(
        "\nRun the shop on them:  shop --tls-dir {dir}\n\
         Call it:               curl --cacert {dir}/ca.pem https://localhost:8082/...",
        dir = dir.display()
    );
    Ok(())
}
