#!/usr/bin/env bash
# Fetch credentials for every kubeconfig context a stack names, so `pulumi preview` can reach its clusters.
#   ci/kube-credentials.sh STACK
# GKE contexts are gcloud's own names (gke_PROJECT_LOCATION_CLUSTER); any other context is taken to be an AKS
# cluster of that name (the default context name of `az aks get-credentials`), found in the subscription.
set -euo pipefail
stack=${1:?usage: ci/kube-credentials.sh STACK}
python=${PYTHON:-python}
contexts=$("$python" -m preflight.contexts "$stack")
if [ -z "$contexts" ]; then
  echo "stack $stack names no kubeconfig context: its clusters come from stack outputs, nothing to fetch"
  exit 0
fi
aks=0
while read -r context; do
  case "$context" in
    gke_*_*_*)
      rest=${context#gke_}
      project=${rest%%_*}; rest=${rest#*_}
      location=${rest%%_*}; cluster=${rest#*_}
      echo "fetching GKE credentials: cluster $cluster, location $location, project $project"
      gcloud container clusters get-credentials "$cluster" --location "$location" --project "$project"
      ;;
    *)
      group=$(az aks list --query "[?name=='$context'].resourceGroup | [0]" -o tsv)
      if [ -z "$group" ]; then
        echo "::error::context $context of stack $stack: no AKS cluster named $context in this subscription" >&2
        exit 1
      fi
      echo "fetching AKS credentials: cluster $context, resource group $group"
      az aks get-credentials --name "$context" --resource-group "$group" --context "$context" --overwrite-existing
      aks=1
      ;;
  esac
done <<< "$contexts"
if [ "$aks" = 1 ]; then
  kubelogin convert-kubeconfig -l azurecli  # AKS with Entra ID: tokens from the az login of this job
fi
