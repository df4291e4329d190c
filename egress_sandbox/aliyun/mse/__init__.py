"""MSE 2019-05-31: the gateways the MSE Ingress Controller creates (ListGateway, ListGatewaySlb)."""
