select * from online_feature_store__purchase_features order by timestamp, id
