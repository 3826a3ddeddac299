//! A regulator's view: differentially private aggregates by category, device class, OWASP IoT
//! and ENISA class, and the RAMA distribution.
//!
//! [`RegulatorView::new`] takes only [`Released`] histograms, which only the
//! [`Releaser`](super::release::Releaser) makes: at least k contributors, noised, small cells
//! suppressed, labels from fixed vocabularies. A withheld histogram arrives as `None`.

use super::hospital::HospitalView;
use super::release::{Released, Releaser};
use crate::html::Doc;
use crate::{Cover, Error, Page};

#[derive(Debug, Clone)]
pub struct RegulatorView {
    pub k: u32,
    pub epsilon: f64,
    pub by_category: Option<Released>,
    pub by_class: Option<Released>,
    pub by_owasp: Option<Released>,
    pub by_enisa: Option<Released>,
    pub rama: Option<Released>,
}

impl RegulatorView {
    pub fn new(
        k: u32,
        epsilon: f64,
        by_category: Option<Released>,
        by_class: Option<Released>,
        by_owasp: Option<Released>,
        by_enisa: Option<Released>,
        rama: Option<Released>,
    ) -> RegulatorView {
        RegulatorView {
            k,
            epsilon,
            by_category,
            by_class,
            by_owasp,
            by_enisa,
            rama,
        }
    }

    /// Releases the hospital's histograms for a regulator.
    pub fn release<R: rand::Rng + rand::CryptoRng>(
        hospital: &HospitalView,
        releaser: &mut Releaser<'_, R>,
    ) -> RegulatorView {
        let h = hospital.histograms();
        let (k, epsilon) = (releaser.config().k_anonymity, releaser.config().epsilon);
        RegulatorView::new(
            k,
            epsilon,
            releaser.release_or_withhold(&h.by_category),
            releaser.release_or_withhold(&h.by_class),
            releaser.release_or_withhold(&h.by_owasp),
            releaser.release_or_withhold(&h.by_enisa),
            releaser.release_or_withhold(&h.rama_deciles),
        )
    }
}

impl Page for RegulatorView {
    fn render(&self, cover: &Cover) -> Result<String, Error> {
        let title = "heir observatory: regulator report";
        let mut doc = Doc::new(title, cover);
        doc.p(&format!(
            "Differentially private aggregates: each histogram has {} contributors or more and every count carries discrete Laplace noise of scale 1/ε (ε = {} per histogram); counts below {} after noise are not shown. No hospital, device or address is named.",
            self.k, self.epsilon, self.k
        ));
        for (id, heading, unit, histogram) in [
            (
                "by-category",
                "Incidents by category",
                "incidents",
                &self.by_category,
            ),
            ("by-class", "Devices by class", "devices", &self.by_class),
            (
                "by-owasp",
                "Incidents by OWASP IoT class",
                "incidents",
                &self.by_owasp,
            ),
            (
                "by-enisa",
                "Incidents by ENISA threat class",
                "incidents",
                &self.by_enisa,
            ),
            (
                "rama-distribution",
                "RAMA distribution (devices per score decile)",
                "devices",
                &self.rama,
            ),
        ] {
            super::released_section(&mut doc, id, heading, unit, self.k, histogram.as_ref())?;
        }
        Ok(doc.finish(title))
    }
}
