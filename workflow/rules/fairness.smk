# Bias and fairness: who is in the cohort, whether sites (or the hold-out set) differ in
# their features, how every binary endpoint's models do per subgroup, and what the
# mitigations fitted inside the training folds change.


rule subgroups:
    input:
        sheet=SHEET_FILE,
        clinical=config["clinical"]["table"],
    output:
        SUBGROUPS,
    log:
        "logs/fairness/subgroups.log",
    conda:
        ENV
    params:
        attributes=config["fairness"]["attributes"],
        id_column=config["clinical"]["id_column"],
    script:
        "../scripts/subgroups.py"


rule fairness_cohort:
    input:
        cohort="<work>/cohort.h5mu",
        subgroups=SUBGROUPS,
        splits=expand("<work>/splits/{endpoint}.tsv", endpoint=ENDPOINTS),
    output:
        table="<work>/fairness/cohort.tsv",
        features="<work>/fairness/shift_features.tsv",
        classifier="<work>/fairness/shift_classifier.tsv",
        markdown="<work>/fairness/cohort.md",
    log:
        "logs/fairness/cohort.log",
    benchmark:
        "benchmarks/fairness/cohort.tsv"
    conda:
        ENV
    params:
        fairness=config["fairness"],
        endpoints=BINARY,
        leave_out=LEAVE_OUT,
        seed=config.get("seed", 42),
    script:
        "../scripts/fairness_cohort.py"


rule fairness_models:
    input:
        subgroups=SUBGROUPS,
        predictions=fairness_model_files("predictions.tsv"),
        folds=mitigated_fold_files(),
    output:
        subgroups="<work>/fairness/subgroup_metrics.tsv",
        disparities="<work>/fairness/disparities.tsv",
        mitigation="<work>/fairness/mitigation.tsv",
        markdown="<work>/fairness/models.md",
        plot=report(
            "<work>/fairness/tradeoff.png",
            caption="../report/fairness.rst",
            category="Fairness",
        ),
    log:
        "logs/fairness/models.log",
    benchmark:
        "benchmarks/fairness/models.tsv"
    conda:
        ENV
    params:
        fairness=config["fairness"],
        seed=config.get("seed", 42),
    script:
        "../scripts/fairness_models.py"
