"""kopf operator that reconciles RecSystem custom resources into running recsys instances."""
