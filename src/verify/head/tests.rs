use super::*;

fn spec(model: &str, dim: usize) -> FeatureSpec {
    FeatureSpec {
        model: model.into(),
        layer: 16,
        pooling: "mean".into(),
        max_text_tokens: 128,
        dim,
    }
}

/// Separable-ish synthetic features: class shifts dims 0 and 1, noise elsewhere.
fn examples(n: usize, dim: usize, seed: u64) -> Vec<Example> {
    let mut s = seed;
    let mut r = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) as f32 * 2.0 - 1.0
    };
    (0..n)
        .map(|i| {
            let positive = i % 3 == 0;
            let mut pooled: Vec<f32> = (0..dim).map(|_| r()).collect();
            if positive {
                pooled[0] += 1.2;
                pooled[1] -= 0.8;
            }
            Example {
                key: format!("k{seed}-{i}"),
                group: if i % 2 == 0 { "a" } else { "b" }.into(),
                pooled,
                p_yes: Some(0.3),
                score: None,
                positive,
                source: if i % 5 == 0 {
                    LabelSource::Curator
                } else {
                    LabelSource::Weak
                },
            }
        })
        .collect()
}

#[test]
fn a_head_learns_separable_features_with_cv_auc_and_calibration() {
    let s = spec("m", 8);
    let ex = examples(120, 8, 1);
    let head = train(&s, &ex, &TrainOptions::default(), None).unwrap();
    let auc = head.metrics.cv_auc.unwrap();
    assert!(auc > 0.9, "cv auc {auc}");
    assert_eq!(head.metrics.examples, 120);
    assert_eq!(head.metrics.positives, 40);
    assert_eq!(head.metrics.by_source["curator"], [8, 16]);
    assert_eq!(head.version.len(), 16);
    // Positives score higher on average, probabilities in (0, 1).
    let mean = |pos: bool| {
        let v: Vec<f32> = ex
            .iter()
            .filter(|e| e.positive == pos)
            .map(|e| head.predict(&e.pooled, Extra::new(e.p_yes, e.score)))
            .collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    assert!(
        mean(true) > 0.7 && mean(false) < 0.3,
        "{} {}",
        mean(true),
        mean(false)
    );
    // Deterministic: the same set gives the same version; another set another.
    let again = train(&s, &ex, &TrainOptions::default(), None).unwrap();
    assert_eq!(again.version, head.version);
    let other = train(&s, &ex[1..], &TrainOptions::default(), None).unwrap();
    assert_ne!(other.version, head.version);
    // JSON round trip.
    let back = Head::from_json(&head.to_json(), "test").unwrap();
    assert_eq!(back, head);
}

#[test]
fn one_class_and_wrong_dims_are_clear_errors() {
    let s = spec("m", 8);
    let ex: Vec<Example> = examples(30, 8, 2)
        .into_iter()
        .filter(|e| !e.positive)
        .collect();
    let err = train(&s, &ex, &TrainOptions::default(), None).unwrap_err();
    assert!(matches!(err, HeadError::OneClass { positives: 0, .. }));
    assert!(err.to_string().contains("one class only"), "{err}");
    assert_eq!(
        train(&s, &[], &TrainOptions::default(), None).unwrap_err(),
        HeadError::Empty
    );
    let ex = examples(30, 7, 3);
    let err = train(&s, &ex, &TrainOptions::default(), None).unwrap_err();
    assert!(
        err.to_string().contains("7 features, the head reads 8"),
        "{err}"
    );
}

#[test]
fn a_head_refuses_another_models_features_and_refines_its_own() {
    let s = spec("model-a", 8);
    let head = train(&s, &examples(90, 8, 4), &TrainOptions::default(), None).unwrap();
    let err = head.check_features(&spec("model-b", 8)).unwrap_err();
    assert!(err.to_string().contains("model-b"), "{err}");
    let err = train(
        &spec("model-b", 8),
        &examples(90, 8, 5),
        &TrainOptions::default(),
        Some(&head),
    )
    .unwrap_err();
    assert!(matches!(err, HeadError::OtherFeatures { .. }));
    // Refined with a few new labels: keeps the prior's scaler and names it.
    let refined = train(
        &s,
        &examples(30, 8, 6),
        &TrainOptions::default(),
        Some(&head),
    )
    .unwrap();
    assert_eq!(refined.mean, head.mean);
    assert!(!refined.use_score);
    assert_eq!(
        refined.metrics.prior.as_deref(),
        Some(head.version.as_str())
    );
}

#[test]
fn the_rule_score_is_an_input_when_labels_carry_it_and_a_prior_without_it_is_extended() {
    let s = spec("m", 8);
    // Pooled features that barely separate; the score separates well.
    let mut ex = examples(150, 8, 7);
    for (i, e) in ex.iter_mut().enumerate() {
        e.pooled[0] = (i % 7) as f32 * 0.1;
        e.pooled[1] = (i % 5) as f32 * 0.1;
        e.score = Some(if e.positive { 5.0 } else { 1.0 } + (i % 4) as f32 * 0.5);
    }
    let without = train(
        &s,
        &ex,
        &TrainOptions {
            use_score: false,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let with = train(&s, &ex, &TrainOptions::default(), None).unwrap();
    assert!(with.use_score && !without.use_score);
    assert_eq!(with.inputs(), 8 + 2);
    let (a, b) = (
        with.metrics.cv_auc.unwrap(),
        without.metrics.cv_auc.unwrap(),
    );
    assert!(a > 0.95 && a > b, "with score {a}, without {b}");
    // The folded fast path and the trained logit agree.
    for e in ex.iter().take(20) {
        let x = Extra::new(e.p_yes, e.score);
        let z = with.logit(&e.pooled, x);
        let p = lr::sigmoid(with.platt_a as f64 * z + with.platt_c as f64) as f32;
        assert!((with.predict(&e.pooled, x) - p).abs() < 1e-4);
    }
    // A missing score counts as the mean: no effect beyond the bias.
    let e = &ex[0];
    let missing = with.predict(&e.pooled, Extra::new(e.p_yes, None));
    assert!(missing.is_finite());

    // A prior without the score (the shipped default) refined by scored curator labels: the
    // new head reads the score, keeps the prior's standardisation for the inputs it had.
    let prior = train(&s, &examples(90, 8, 8), &TrainOptions::default(), None).unwrap();
    assert!(!prior.use_score);
    let refined = train(&s, &ex, &TrainOptions::default(), Some(&prior)).unwrap();
    assert!(refined.use_score);
    assert_eq!(&refined.mean[..prior.mean.len()], prior.mean.as_slice());
    assert_eq!(refined.mean.len(), prior.mean.len() + 1);
    // Heads saved before the score input existed still load (no `use_score` field).
    let mut old: serde_json::Value = serde_json::from_str(&prior.to_json()).unwrap();
    old.as_object_mut().unwrap().remove("use_score");
    let back = Head::from_json(&old.to_string(), "old head").unwrap();
    assert_eq!(back, prior);
}
