"""Explanations of fitted models: SHAP values of tabular and fused models
(:mod:`radiotx.explain.tabular`) and attributions of image models
(:mod:`radiotx.explain.images`)."""
