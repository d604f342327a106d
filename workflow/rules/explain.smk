# SHAP explanations of the models that config explain.shap names, for binary endpoints: each
# outer-fold job explains its fitted models on its test patients (rule outer_fold gets
# EXPLAINED as a param); rule shap gathers one model's folds into its global importance,
# per-patient values, stability across folds and summary figure.

# (endpoint, pipeline) -> its models that config explain.shap names
EXPLAINED = {
    (endpoint, pipeline): [
        m for m in models_of(endpoint, pipeline) if m in config["explain"]["shap"]
    ]
    for endpoint in ENDPOINTS
    for pipeline in PIPELINES
}
# the output folders of every explained model of a binary endpoint (survival and
# multiclass models are not explained: the outer-fold jobs log that they are skipped)
SHAP_DIRS = [
    f"<work>/models/{endpoint}/{pipeline}/{model}/shap"
    for endpoint in BINARY
    for pipeline in PIPELINES
    for model in EXPLAINED[(endpoint, pipeline)]
]
SHAP_FILES = ["importance.tsv", "patients.tsv", "stability.tsv", "summary.png"]


rule shap:
    input:
        folds=outer_fold_files,
    output:
        importance="<work>/models/{endpoint}/{pipeline}/{classifier}/shap/importance.tsv",
        patients="<work>/models/{endpoint}/{pipeline}/{classifier}/shap/patients.tsv",
        stability="<work>/models/{endpoint}/{pipeline}/{classifier}/shap/stability.tsv",
        plot=report(
            "<work>/models/{endpoint}/{pipeline}/{classifier}/shap/summary.png",
            caption="../report/shap.rst",
            category="Explanations",
            subcategory="{endpoint}",
            labels={"pipeline": "{pipeline}", "classifier": "{classifier}"},
        ),
    log:
        "logs/shap/{endpoint}/{pipeline}/{classifier}.log",
    conda:
        ENV
    params:
        top_k=config["explain"]["top_k"],
    script:
        "../scripts/explain.py"
