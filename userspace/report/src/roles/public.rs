//! The public's view: k-anonymous, noised aggregates only, and the coarsest ones (incidents
//! by category, devices per RAMA band).
//!
//! Like the regulator's, [`PublicView::new`] takes only [`Released`] histograms.

use super::hospital::HospitalView;
use super::release::{Released, Releaser};
use crate::html::Doc;
use crate::{Cover, Error, Page};

#[derive(Debug, Clone)]
pub struct PublicView {
    pub k: u32,
    pub epsilon: f64,
    pub by_category: Option<Released>,
    pub bands: Option<Released>,
}

impl PublicView {
    pub fn new(
        k: u32,
        epsilon: f64,
        by_category: Option<Released>,
        bands: Option<Released>,
    ) -> PublicView {
        PublicView {
            k,
            epsilon,
            by_category,
            bands,
        }
    }

    /// Releases the hospital's histograms for the public.
    pub fn release<R: rand::Rng + rand::CryptoRng>(
        hospital: &HospitalView,
        releaser: &mut Releaser<'_, R>,
    ) -> PublicView {
        let h = hospital.histograms();
        let (k, epsilon) = (releaser.config().k_anonymity, releaser.config().epsilon);
        PublicView::new(
            k,
            epsilon,
            releaser.release_or_withhold(&h.by_category),
            releaser.release_or_withhold(&h.rama_bands),
        )
    }
}

impl Page for PublicView {
    fn render(&self, cover: &Cover) -> Result<String, Error> {
        let title = "heir observatory: public report";
        let mut doc = Doc::new(title, cover);
        doc.p(&format!(
            "Aggregates only, each over {} contributors or more, with discrete Laplace noise (ε = {}); counts below {} are not shown.",
            self.k, self.epsilon, self.k
        ));
        for (id, heading, unit, histogram) in [
            (
                "by-category",
                "Incidents by category",
                "incidents",
                &self.by_category,
            ),
            ("bands", "Devices per RAMA band", "devices", &self.bands),
        ] {
            super::released_section(&mut doc, id, heading, unit, self.k, histogram.as_ref())?;
        }
        Ok(doc.finish(title))
    }
}
