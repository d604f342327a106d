"""The complete work tree replaces results/ in one step."""

import logging

from radiotx import logs, publish

logs.to_file(snakemake.log[0])
files = publish.publish(publish.WORK, publish.RESULTS)
logging.getLogger("radiotx").info("published %d files of %s/", len(files), publish.WORK)
