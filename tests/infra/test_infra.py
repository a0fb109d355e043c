"""Static checks of `infra/` (no Bicep CLI and no Azure here): every Bicep file parses, and the app settings the
Bicep deploys are held against the settings the code reads, both ways, so renaming either side breaks the build.

The settings are read from pycep's parse of `infra/app/api.bicep`, not grepped, so a setting hidden in a
variable, a `union(...)` or a conditional still counts.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser
from pydantic import SecretStr

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
API_BICEP = INFRA / "app" / "api.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Settings the Bicep deploys that the Python code does not read: the Functions host, the platform or the Event
# Hubs extension reads them. Each entry must really be deployed (a stale entry fails the test).
PLATFORM_SETTINGS = {
    # Event Hubs trigger (connection="EventHubConnection"): the extension reads the identity to use.
    "EventHubConnection__credential",
    "EventHubConnection__clientId",
    # Application Insights with Entra authentication, read by the host.
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # App Service Authentication: its client credential is the user-assigned identity (federated, no secret), and
    # only the deploying tenant's accounts may sign in.
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
    "WEBSITE_AUTH_AAD_ALLOWED_TENANTS",
}

# Settings the code reads but the Bicep deliberately does not set. Each entry must be a real alias in
# shared/settings.py and must not be deployed.
OPTIONAL_NOT_DEPLOYED = {
    # Connection-string (account key) form: local runs against Azurite only. Azure uses AzureWebJobsStorage__*.
    "AzureWebJobsStorage",
    # The Bicep sets AzureWebJobsStorage__accountName instead (public cloud, default DNS).
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__blobServiceUri",
    # State lives in the host storage account; these point it elsewhere (the first one carries a key).
    "STATE_STORAGE_CONNECTION",
    "STATE_TABLE_SERVICE_URI",
    "STATE_BLOB_SERVICE_URI",
    # The code's default ("bindwatch") is what the deployment wants.
    "STATE_TABLE_PREFIX",
    # Set by the platform itself when App Service Authentication is on; an app setting could fake it.
    "WEBSITE_AUTH_ENABLED",
    # The default (300 s) fits host.json's functionTimeout (10 min); raise both together if ever needed.
    "INVOCATION_BUDGET_SECONDS",
    # `python -m shared pull` only, on an admin's machine: the function app never calls Graph.
    "GRAPH_URL",
    "GRAPH_ACCESS_TOKEN",
}

KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/\$\{\w+\}/\)$")


@cache
def parse(path: Path) -> dict[str, Any]:
    """Parse one Bicep file with pycep (cached: a parse takes about a second)."""
    return BicepParser().parse(file_path=path)


def code_settings() -> dict[str, Any]:
    """App-setting name (alias) -> pydantic field, for every setting the code reads."""
    return {field.alias or name: field for name, field in Settings.model_fields.items()}


def _objects(expression: Any, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The object literals an expression can evaluate to: follows variables, union() and ternaries."""
    if isinstance(expression, str) and expression in variables:
        return _objects(variables[expression]["value"], variables)
    if not isinstance(expression, dict):
        return []
    function = expression.get("function")
    if isinstance(function, dict) and function.get("type") == "union":
        return [obj for arg in function["parameters"].values() for obj in _objects(arg, variables)]
    operator = expression.get("operator")
    if isinstance(operator, dict) and operator.get("type") == "conditional":
        operands = operator["operands"]
        return _objects(operands["true_value"], variables) + _objects(operands["false_value"], variables)
    if isinstance(function, dict) or isinstance(operator, dict):
        raise AssertionError(f"app settings built with an expression this test cannot follow: {expression!r}")
    return [expression]


@cache
def deployed_settings() -> dict[str, Any]:
    """App setting name -> its Bicep value expression, from every place a setting can be set in api.bicep."""
    parsed = parse(API_BICEP)
    variables = parsed.get("variables", {})
    settings: dict[str, Any] = {}
    for resource in parsed["resources"].values():
        config = resource["config"]
        if resource["type"] == "Microsoft.Web/sites/config" and config.get("name") == "appsettings":
            for obj in _objects(config["properties"], variables):
                settings.update(obj)
        if resource["type"] == "Microsoft.Web/sites":
            for item in config.get("properties", {}).get("siteConfig", {}).get("appSettings", []) or []:
                settings[item["name"]] = item["value"]
    assert settings, "found no app settings in infra/app/api.bicep"
    return settings


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_parses(path: Path) -> None:
    """Every Bicep file parses with pycep (what Checkov uses), so the static checks really read it."""
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_bicep_files_found() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert {"main.bicep", "entra-diagnostic-setting.bicep", "app/api.bicep"} <= names


def test_module_paths_exist() -> None:
    """A module path typo is otherwise found only by `az deployment`."""
    for path in BICEP_FILES:
        for name, module in parse(path).get("modules", {}).items():
            target = path.parent / module["detail"]["path"]
            assert target.is_file(), f"{path.name}: module {name} points at missing {target}"


def test_every_deployed_setting_is_read_by_the_code_or_the_platform() -> None:
    unknown = set(deployed_settings()) - set(code_settings()) - PLATFORM_SETTINGS
    assert not unknown, f"infra sets app settings nothing reads (renamed in shared/settings.py?): {sorted(unknown)}"


def test_every_setting_the_code_reads_is_deployed_or_listed_optional() -> None:
    missing = set(code_settings()) - set(deployed_settings()) - OPTIONAL_NOT_DEPLOYED
    assert not missing, f"the code reads settings infra does not set: {sorted(missing)}"


def test_exception_lists_are_not_stale() -> None:
    deployed, read = set(deployed_settings()), set(code_settings())
    assert deployed >= PLATFORM_SETTINGS, f"listed as platform but not deployed: {sorted(PLATFORM_SETTINGS - deployed)}"
    assert not PLATFORM_SETTINGS & read, "a platform setting is read by the code: move it out of PLATFORM_SETTINGS"
    assert read >= OPTIONAL_NOT_DEPLOYED, f"not read by the code: {sorted(OPTIONAL_NOT_DEPLOYED - read)}"
    assert not OPTIONAL_NOT_DEPLOYED & deployed, f"deployed after all: {sorted(OPTIONAL_NOT_DEPLOYED & deployed)}"


def test_secret_settings_are_key_vault_references() -> None:
    """Every setting the code treats as a secret (SecretStr) is deployed only as a Key Vault reference."""
    secret_aliases = {alias for alias, field in code_settings().items() if field.annotation == SecretStr | None}
    assert {"ALERT_TEAMS_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET", "ALERT_PAGERDUTY_ROUTING_KEY"} <= secret_aliases
    deployed = deployed_settings()
    for alias in sorted(secret_aliases):
        if alias in OPTIONAL_NOT_DEPLOYED:
            continue
        assert alias in deployed, f"secret {alias} is neither deployed nor listed optional"
        assert KEY_VAULT_REFERENCE.match(str(deployed[alias])), f"{alias} is not a Key Vault reference"


def test_key_vault_references_resolve_with_the_user_assigned_identity() -> None:
    resources = parse(API_BICEP)["resources"]
    (site,) = [r for r in resources.values() if r["type"] == "Microsoft.Web/sites"]
    properties = site["config"]["properties"]
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    assert site["config"]["identity"]["type"] == "UserAssigned"


def test_no_keys_in_app_settings_or_anywhere_in_infra() -> None:
    """No storage or Event Hubs key is read by any template, so none can reach an app setting or an output."""
    key_use = re.compile(r"\blist\w*(Keys|ConnectionStrings)\s*\(|primaryKey|AccountKey=|SharedAccessKey=", re.I)
    for path in BICEP_FILES:
        code = re.sub(r"(?m)^\s*//.*$", "", path.read_text())  # comments may name listKeys; code may not
        assert not key_use.search(code), f"{path.name} reads a key"
    for name, value in deployed_settings().items():
        rendered = json.dumps(value)
        assert "listKeys" not in rendered and "AccountKey" not in rendered, f"{name} carries a key"
    credentials = {k: v for k, v in deployed_settings().items() if k.endswith("__credential")}
    assert credentials == {
        "AzureWebJobsStorage__credential": "managedidentity",
        "EventHubConnection__credential": "managedidentity",
    }


def test_flex_consumption_runtime_and_deployment_identity() -> None:
    resources = parse(API_BICEP)["resources"]
    (plan,) = [r for r in resources.values() if r["type"] == "Microsoft.Web/serverfarms"]
    assert plan["config"]["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    (site,) = [r for r in resources.values() if r["type"] == "Microsoft.Web/sites"]
    app_config = site["config"]["properties"]["functionAppConfig"]
    assert app_config["runtime"] == {"name": "python", "version": "3.11"}
    assert app_config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    site_config = site["config"]["properties"]["siteConfig"]
    assert site_config["ftpsState"] == "Disabled" and site_config["remoteDebuggingEnabled"] is False
    assert site_config["minTlsVersion"] == "1.2" and site["config"]["properties"]["httpsOnly"] is True
    # Flex Consumption rejects these: the runtime lives in functionAppConfig.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(deployed_settings())


def test_entra_diagnostic_setting_is_tenant_scoped_and_streams_user_sign_ins() -> None:
    parsed = parse(INFRA / "entra-diagnostic-setting.bicep")
    assert parsed["globals"]["scope"]["value"] == "tenant"
    (setting,) = parsed["resources"].values()
    assert setting["type"].lower() == "microsoft.aadiam/diagnosticsettings"
    logs = setting["config"]["properties"]["logs"]
    # AuditLogs carry the Conditional Access policy changes (issue 17); bindwatch counts them as skipped until then.
    expected = {"SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs"}
    assert {log["category"] for log in logs if log["enabled"]} == expected
    params = json.loads((INFRA / "entra-diagnostic-setting.parameters.json").read_text())["parameters"]
    assert set(params) <= set(parsed["parameters"])


def test_event_hubs_namespace_keeps_local_auth_for_entra() -> None:
    """Entra's diagnostic setting writes with a SAS rule only; disabling local auth would stop the stream."""
    resources = parse(INFRA / "app" / "eventhubs.bicep")["resources"]
    (namespace,) = [r for r in resources.values() if r["type"] == "Microsoft.EventHub/namespaces"]
    assert namespace["config"]["properties"]["disableLocalAuth"] is False
    assert namespace["config"]["properties"]["minimumTlsVersion"] == "1.2"
    (rule,) = [r for r in resources.values() if r["type"] == "Microsoft.EventHub/namespaces/authorizationRules"]
    assert sorted(rule["config"]["properties"]["rights"]) == ["Listen", "Manage", "Send"]


def test_azd_parameters_match_main_bicep() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parse(INFRA / "main.bicep")["parameters"]
    assert set(parameters) <= set(declared)
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    assert parameters["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    for name in ("alertTeamsWebhookUrl", "alertWebhookUrl", "alertWebhookSecret", "alertPagerDutyRoutingKey"):
        assert "secure" in {d.get("type") for d in declared[name]["decorators"]}, f"{name} must be @secure()"


def _auth_settings() -> dict[str, Any]:
    resources = parse(API_BICEP)["resources"]
    (auth,) = [
        r["config"]
        for r in resources.values()
        if r["type"] == "Microsoft.Web/sites/config" and r["config"].get("name") == "authsettingsV2"
    ]
    return auth["properties"]


def test_the_lookup_is_behind_entra_sign_in_and_health_keeps_its_key() -> None:
    """Easy Auth in front of everything but /api/health; the routes' own auth levels agree with that."""
    import azure.functions as func

    from shared.functions import http

    auth = _auth_settings()
    assert auth["platform"]["enabled"] == "lookupEnabled"
    validation = auth["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert validation["excludedPaths"] == ["/api/health"]
    assert auth["httpSettings"]["requireHttps"] is True
    assert auth["login"]["tokenStore"]["enabled"] is True
    provider = auth["identityProviders"]["operator"]["operands"]["true_value"]["azureActiveDirectory"]
    assert provider["registration"]["clientSecretSettingName"] == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    # Entra's assignment decides who signs in; allowedPrincipals.groups is reported not to work, so it is not used.
    assert "defaultAuthorizationPolicy" not in provider["validation"]
    routes = {}
    for function in (http.signin_lookup, http.health):
        built = function.build()
        (trigger,) = [b for b in built.get_bindings() if b.type == "httpTrigger"]
        routes[trigger.route] = trigger.auth_level
    assert routes == {"signins/{correlation_id}": func.AuthLevel.ANONYMOUS, "health": func.AuthLevel.FUNCTION}
    assert validation["excludedPaths"] == [
        "/api/" + r for r, level in routes.items() if level == func.AuthLevel.FUNCTION
    ]


def test_the_lookup_settings_follow_the_deployers_choice() -> None:
    deployed = deployed_settings()
    assert (
        deployed["LOOKUP_AUTH_ENABLED"] == "true"
    )  # only where App Service Authentication is deployed (lookupEnabled)
    assert deployed["LOOKUP_ALLOWED_ROLE"] == "lookupAllowedRole"
    assert deployed["LOOKUP_ALLOWED_GROUP"] == "lookupAllowedGroupId"
    main = parse(INFRA / "main.bicep")
    assert {"lookupAuthClientId", "lookupAllowedRole", "lookupAllowedGroupId"} <= set(main["parameters"])
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["lookupAuthClientId"]["value"] == "${LOOKUP_AUTH_CLIENT_ID}"


# --- diagnostic settings, local auth, the smoke test's send right ---

DIAGNOSTICS = INFRA / "app" / "diagnostics.bicep"


def _resolved(value: Any, variables: dict[str, Any]) -> Any:
    return variables[value]["value"] if isinstance(value, str) and value in variables else value


def diagnostic_settings() -> dict[str, dict[str, Any]]:
    """The type of the resource each diagnostic setting is scoped to -> its properties, variables resolved."""
    parsed = parse(DIAGNOSTICS)
    variables = parsed.get("variables", {})
    resources = parsed["resources"]
    settings: dict[str, dict[str, Any]] = {}
    for resource in resources.values():
        if resource["type"] != "Microsoft.Insights/diagnosticSettings":
            continue
        config = resource["config"]
        scoped = resources[config["scope"]]
        assert scoped["existing"], "a diagnostic setting is scoped to a resource this module does not create"
        properties = {k: _resolved(v, variables) for k, v in config["properties"].items()}
        assert scoped["type"] not in settings, f"two settings on {scoped['type']}"
        settings[scoped["type"]] = properties
    return settings


def enabled(properties: dict[str, Any], key: str = "logs") -> dict[str, Any]:
    return {item["category"]: item["enabled"] for item in properties.get(key, [])}


def test_key_vault_event_hubs_and_storage_send_their_logs_to_the_workspace() -> None:
    settings = diagnostic_settings()
    assert set(settings) == {
        "Microsoft.KeyVault/vaults",
        "Microsoft.EventHub/namespaces",
        "Microsoft.Storage/storageAccounts/blobServices",
        "Microsoft.Storage/storageAccounts/tableServices",
    }
    assert all(properties["workspaceId"] == "workspaceId" for properties in settings.values())
    main = parse(INFRA / "main.bicep")["modules"]["diagnostics"]["config"]["params"]
    sources = {
        name: (value["operator"]["operands"]["operand_1"], value["operator"]["operands"]["operand_2"])
        for name, value in main.items()
        if isinstance(value, dict)
    }
    assert sources["workspaceId"][0] == "monitoring" and "logAnalyticsId" in json.dumps(sources["workspaceId"][1])
    assert (sources["keyVaultName"][0], sources["eventHubNamespaceName"][0], sources["storageAccountName"][0]) == (
        "keyVault",
        "eventHubs",
        "storage",
    )


def test_who_read_a_secret_and_what_changed_the_namespace_are_logged() -> None:
    settings = diagnostic_settings()
    assert enabled(settings["Microsoft.KeyVault/vaults"]) == {"AuditEvent": True}
    namespace = settings["Microsoft.EventHub/namespaces"]
    assert enabled(namespace) == {"OperationalLogs": True, "DiagnosticErrorLogs": True, "AutoScaleLogs": True}
    assert enabled(namespace, "metrics") == {"AllMetrics": True}


def test_storage_logs_reads_writes_and_deletes_of_blobs_and_tables() -> None:
    settings = diagnostic_settings()
    read_parameter = parse(DIAGNOSTICS)["parameters"]["storageReadLogs"]
    assert read_parameter["default"] is True
    for service in ("blobServices", "tableServices"):
        properties = settings[f"Microsoft.Storage/storageAccounts/{service}"]
        assert enabled(properties) == {"StorageRead": "storageReadLogs", "StorageWrite": True, "StorageDelete": True}
        assert enabled(properties, "metrics") == {"Transaction": True}
    assert parse(INFRA / "main.bicep")["parameters"]["storageReadLogs"]["default"] is True


def test_the_workspace_takes_no_shared_key() -> None:
    """Nothing writes to the workspace with its keys: App Insights (local auth off too) and diagnostic settings."""
    resources = parse(INFRA / "app" / "monitoring.bicep")["resources"]
    (workspace,) = [r for r in resources.values() if r["type"] == "Microsoft.OperationalInsights/workspaces"]
    assert workspace["config"]["properties"]["features"]["disableLocalAuth"] is True
    (insights,) = [r for r in resources.values() if r["type"] == "Microsoft.Insights/components"]
    assert insights["config"]["properties"]["DisableLocalAuth"] is True


def test_the_deployer_may_send_to_the_hub_only_while_a_smoke_test_asks_for_it() -> None:
    rbac = parse(INFRA / "app" / "rbac.bicep")

    def body(resource: dict[str, Any]) -> dict[str, Any]:  # a conditional resource nests its body under "config"
        return resource["config"].get("config", resource["config"])

    senders = [
        (name, r)
        for name, r in rbac["resources"].items()
        if r["type"] == "Microsoft.Authorization/roleAssignments"
        and "eventHubsDataSender" in json.dumps(body(r)["properties"]["roleDefinitionId"])
    ]
    ((name, sender),) = senders
    condition = sender["config"]["condition"]["operator"]
    assert condition["type"] == "and" and condition["operands"]["operand_1"] == "smokeTestSender"
    assert body(sender)["properties"]["principalId"] == "principalId"  # never the app's identity
    assert rbac["parameters"]["smokeTestSender"]["default"] is False
    main = parse(INFRA / "main.bicep")
    assert main["parameters"]["smokeTestSender"]["default"] is False
    assert main["modules"]["rbac"]["config"]["params"]["smokeTestSender"] == "smokeTestSender"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["smokeTestSender"]["value"] == "${SMOKE_TEST_SENDER=false}"
    others = [r for n, r in rbac["resources"].items() if n != name and "condition" in r["config"]]
    assert not others, "only the smoke test's role is optional; the app's roles are always granted"
