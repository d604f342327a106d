# The last job: the complete work tree replaces results/ in one step (radiotx.publish).
rule publish_results:
    input:
        deliverables(),
    output:
        f"{publish.RESULTS}/{publish.MARKER}",
    log:
        "logs/publish.log",
    conda:
        ENV
    script:
        "../scripts/publish_results.py"
