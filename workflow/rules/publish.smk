# The last job: the complete work tree replaces results/ in one step (radiotx.publish).
rule publish_results:
    input:
        feature_files("radiomics"),
        feature_files("rnaseq"),
        feature_files("deep"),
        deep_explanations(),
        "<work>/qa/radiomics.tsv",
        "<work>/qa/rnaseq.tsv",
        "<work>/qa/rnaseq_qc.png",
        stability_outputs(),
        "<work>/summary.tsv",
        "<work>/summary.md",
        "<work>/summary.html",
        "<work>/cohort.html",
        "<work>/mlflow/last_run.json",
        learning_curve_files(),
        comparison_files(),
        expand("{folder}/{name}", folder=SHAP_DIRS, name=SHAP_FILES),
        fairness_outputs(),
    output:
        f"{publish.RESULTS}/{publish.MARKER}",
    log:
        "logs/publish.log",
    conda:
        ENV
    script:
        "../scripts/publish_results.py"
