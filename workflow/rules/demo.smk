# The built-in demo cohort, generated when the config has a `demo` section and its files are
# absent. Real studies drop that section and point the patient sheet at their own files.

if "demo" in config:

    rule demo_cohort:
        output:
            truth=f"{config['demo']['outdir']}/ground_truth.json",
            clinical=config["clinical"]["table"],
            gene_sets=f"{config['demo']['outdir']}/gene_sets.gmt",
            files=demo_files(),
        log:
            "logs/demo_cohort.log",
        conda:
            ENV
        params:
            outdir=lambda wildcards, output: os.path.dirname(output.truth),
            n_patients=config["demo"]["n_patients"],
            rnaseq_missing=config["demo"]["rnaseq_missing"],
            site_bias_mm=config["demo"]["site_bias_mm"],
            seed=config.get("seed", 42),
            sheet=config["patients"],
        script:
            "../scripts/demo_cohort.py"
