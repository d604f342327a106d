"""Bias and fairness: subgroups, covariate shift, subgroup performance and mitigation."""
